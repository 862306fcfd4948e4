"""The tomogram simulator: ground truth that is right, imaging that is physical, files on disk."""

import json

import numpy as np
import pytest
from scipy import ndimage

from deepetpicker.errors import DeepETPickerError
from deepetpicker.simulate import (
    BUILTIN_CLASSES,
    ParticleClass,
    back_project,
    ctf,
    electron_wavelength,
    label_diameter_for,
    label_diameters_for,
    particle_template,
    project,
    simulate_dataset,
    simulate_tomogram,
    tilt_angles,
    wbp_weights,
)

SMALL = (40, 96, 96)


@pytest.fixture(scope="module")
def tomo():
    """One small tomogram with every kind of distractor."""
    return simulate_tomogram(SMALL, n_particles=12, classes=3, seed=11, n_gold=3, n_vesicles=1)


def _contrast(phantom, sigma):
    """The phantom without its ice slab (a pure z profile, invisible behind the missing
    wedge), low-passed and flattened."""
    return ndimage.gaussian_filter(phantom - phantom.mean(axis=(1, 2), keepdims=True),
                                   sigma).ravel()


def _radii(picks, info):
    diam = {c["id"]: c["diameter"] for c in info["classes"]}
    return np.array([diam[c] / 2.0 for c in picks.classes])


def test_same_seed_same_tomogram_other_seed_other(tomo):
    volume, picks, info = tomo
    again, picks2, info2 = simulate_tomogram(SMALL, n_particles=12, classes=3, seed=11,
                                             n_gold=3, n_vesicles=1)
    assert np.array_equal(volume, again)
    assert np.array_equal(picks.as_array(), picks2.as_array(), equal_nan=True)
    assert info["gold"] == info2["gold"] and info["vesicles"] == info2["vesicles"]
    other, picks3, _ = simulate_tomogram(SMALL, n_particles=12, classes=3, seed=12,
                                         n_gold=3, n_vesicles=1)
    assert not np.allclose(volume, other)
    assert not np.array_equal(picks.xyz, picks3.xyz)


def test_volume_is_float32_zyx_standardised(tomo):
    volume, picks, info = tomo
    assert volume.shape == SMALL and volume.dtype == np.float32
    assert abs(float(volume.mean())) < 1e-3 and abs(float(volume.std()) - 1.0) < 1e-3
    assert picks.voxel_size == 10.0 and not picks.has_scores


def test_picks_balanced_inside_volume_and_ice(tomo):
    volume, picks, info = tomo
    assert len(picks) == 12
    assert picks.counts(3) == {1: 4, 2: 4, 3: 4}
    nz, ny, nx = SMALL
    xyz = picks.xyz
    assert np.all(xyz >= 0) and np.all(xyz[:, 0] <= nx - 1) and np.all(xyz[:, 1] <= ny - 1)
    assert np.all(xyz == np.round(xyz))  # voxel centres
    z0, z1 = info["slab"]
    assert 0 <= z0 < z1 <= nz - 1 and z1 - z0 + 1 == round(0.7 * nz)
    r = _radii(picks, info)
    # the whole particle, not just its centre, sits in the ice
    assert np.all(xyz[:, 2] - r >= z0) and np.all(xyz[:, 2] + r <= z1)


def test_particles_do_not_overlap(tomo):
    _, picks, info = tomo
    r = _radii(picks, info)
    d = np.linalg.norm(picks.xyz[:, None] - picks.xyz[None], axis=2)
    off = ~np.eye(len(picks), dtype=bool)
    assert np.all(d[off] >= (r[:, None] + r[None])[off])


def test_distractors_present_and_not_picked(tomo):
    volume, picks, info = tomo
    assert len(info["gold"]) == 3 and len(info["vesicles"]) == 1
    r = _radii(picks, info)
    for x, y, z, diameter in info["gold"]:
        d = np.linalg.norm(picks.xyz - [x, y, z], axis=1)
        assert np.all(d >= r + diameter / 2)
        # gold is the darkest thing in the tomogram
        assert volume[int(z), int(y), int(x)] < np.percentile(volume, 0.5)
    for x, y, z, radius, _radius_z in info["vesicles"]:
        d = np.linalg.norm(picks.xyz - [x, y, z], axis=1)
        assert np.all(d >= r + radius)  # outside the vesicle, clear of its membrane


def test_particles_are_visible_and_dark():
    """After a low-pass, the tomogram is darker at the picks than in the empty ice around them,
    and it correlates negatively with the phantom (dense matter dark)."""
    volume, picks, info = simulate_tomogram(SMALL, n_particles=12, classes=3, seed=4,
                                            n_gold=0, n_vesicles=0, keep_phantom=True)
    smooth = ndimage.gaussian_filter(volume, 2.0)
    at_picks = smooth[tuple(np.rint(picks.zyx).astype(int).T)]
    rng = np.random.default_rng(0)
    z0, z1 = info["slab"]
    pts = np.column_stack([rng.integers(z0, z1 + 1, 3000), rng.integers(0, SMALL[1], 3000),
                           rng.integers(0, SMALL[2], 3000)])
    far = np.min(np.linalg.norm(pts[:, None, ::-1] - picks.xyz[None], axis=2), axis=1) > 14
    background = smooth[tuple(pts[far].T)]
    assert far.sum() > 500
    assert background.mean() - at_picks.mean() > 2.0 * background.std()
    assert np.mean(at_picks < np.median(background)) >= 0.9
    assert np.corrcoef(_contrast(info["phantom"], 2.0), smooth.ravel())[0, 1] < -0.5


def test_snr_sets_the_noise():
    kw = dict(shape=SMALL, n_particles=10, classes=2, seed=2, n_gold=0, n_vesicles=0,
              keep_phantom=True)
    corr = {}
    for snr in (0.02, 1.0):
        volume, _, info = simulate_tomogram(snr=snr, **kw)
        corr[snr] = np.corrcoef(_contrast(info["phantom"], 1.0),
                                ndimage.gaussian_filter(volume, 1.0).ravel())[0, 1]
    assert corr[1.0] < corr[0.02] - 0.2
    assert corr[0.02] < -0.1


def test_back_projection_is_the_adjoint_of_projection():
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(12, 5, 32)).astype(np.float32)
    angles = tilt_angles((-60, 60), 15)
    images = rng.normal(size=(len(angles), 5, 32)).astype(np.float32)
    lhs = np.vdot(project(vol, angles).astype(np.float64), images.astype(np.float64))
    rhs = np.vdot(vol.astype(np.float64), back_project(images, angles, 12).astype(np.float64))
    assert lhs == pytest.approx(rhs, rel=1e-4)
    # the untilted projection is the plain sum over z
    assert np.allclose(project(vol, [0.0])[0], vol.sum(axis=0), atol=1e-4)


def test_weighted_back_projection_shows_the_missing_wedge():
    nz, ny, nx = 48, 3, 96
    z, y, x = np.mgrid[:nz, :ny, :nx]
    blob = np.exp(-((x - 48) ** 2 + (z - 24) ** 2) / (2 * 2.0 ** 2)).astype(np.float32)
    widths = {}
    for limit in (60, 89):
        angles = tilt_angles((-limit, limit), 1.5)
        images = project(blob, angles)
        weights = wbp_weights(angles, nx)
        filtered = np.fft.irfft(np.fft.rfft(images, axis=2) * weights[:, None, :], n=nx, axis=2)
        rec = back_project(filtered.astype(np.float32), angles, nz)[:, 1, :]
        peak = rec[24, 48]
        assert peak == rec.max()
        widths[limit] = (np.sum(rec[:, 48] > peak / 2), np.sum(rec[24, :] > peak / 2))
    (z60, x60), (z89, x89) = widths[60], widths[89]
    assert abs(z89 - x89) <= 1          # full coverage: round
    assert z60 >= x60 + 2               # +-60 degrees: stretched along z


def test_ctf_physics():
    assert electron_wavelength(300) == pytest.approx(0.01969, abs=2e-5)
    assert ctf(np.array([0.0]), 3.0)[0] == pytest.approx(0.07)
    k = np.linspace(0.001, 0.05, 2000)
    values = ctf(k, 3.0, bfactor=0.0)
    first_zero = k[np.argmax(values < 0)]
    # chi = pi: k = 1 / sqrt(lambda * defocus), a little earlier with amplitude contrast
    expected = 1 / np.sqrt(electron_wavelength(300) * 3.0e4)
    assert 0.97 * expected < first_zero <= expected
    assert np.all(values[k < 0.6 * expected] > 0)  # dense matter prints dark


def test_particle_templates_fit_their_diameter():
    for spec in BUILTIN_CLASSES:
        t = particle_template(spec.shape, spec.diameter)
        c = t.shape[0] // 2
        idx = np.argwhere(t > 0.02) - c
        assert np.linalg.norm(idx, axis=1).max() <= spec.diameter / 2 + 0.5
        assert t.max() > 0.9
    # the barrel is hollow along its axis, the globule is not
    barrel = particle_template("barrel", 16.0)
    c = barrel.shape[0] // 2
    assert barrel[c, c, c] < 0.2 < barrel[c - 2, c, c + 5]
    assert particle_template("globule", 8.0)[4, 4, 4] > 0.9


def test_custom_classes_and_labels():
    specs = [ParticleClass("small", "globule", 6.0), {"name": "big", "shape": "complex",
                                                      "diameter": 12}]
    volume, picks, info = simulate_tomogram((24, 48, 48), n_particles=6, classes=specs, seed=1)
    assert [c["name"] for c in info["classes"]] == ["small", "big"]
    assert picks.counts(2) == {1: 3, 2: 3}
    assert label_diameter_for(BUILTIN_CLASSES[:3]) == 9
    # classes at most 2.5 x the smallest one's label share it; the demo's 24 voxels are 2.7 x
    # the 9-voxel label of its 16, so each class gets its own, as a ring of 30 beside a globule
    # of 8 (label 5: 6 x) does
    assert label_diameters_for(BUILTIN_CLASSES[1:3]) == (9, None)
    assert label_diameters_for(BUILTIN_CLASSES[:3]) == (9, [15, 9, 11])
    assert label_diameters_for([ParticleClass("g", "globule", 8.0),
                                ParticleClass("r", "ring", 30.0)]) == (5, [5, 19])
    assert label_diameters_for([ParticleClass("a", "globule", 5.0)]) == (3, None)
    assert label_diameter_for([ParticleClass("a", "globule", 5.0)]) == 3


@pytest.mark.parametrize("kwargs, words", [
    (dict(classes=9), ["classes=9", "1 to 4"]),
    (dict(classes=["ribosome", "banana"]), ["'banana'", "ribosome"]),
    (dict(classes=[{"name": "x", "shape": "cube", "diameter": 8}]), ["'cube'", "globule"]),
    (dict(classes=[{"name": "x", "shape": "rod"}]), ["diameter"]),
    (dict(classes=[{"name": "x", "shape": "rod", "diameter": 200}]), ["200", "4..64"]),
    (dict(n_particles=400), ["400 particles", "n_particles"]),
    (dict(shape=(8, 64, 64)), ["shape=(8, 64, 64)", "16"]),
    (dict(ice_thickness=10), ["ice_thickness=10", "24 voxels"]),
    (dict(snr=0), ["snr=0"]),
    (dict(tilt_range=(-60, 95)), ["tilt_range", "89"]),
    (dict(tilt_step=0), ["tilt_step=0"]),
    (dict(defocus_um=-3), ["defocus_um=-3"]),
    (dict(seed="abc"), ["seed='abc'", "whole number"]),
])
def test_bad_settings_are_explained(kwargs, words):
    args = dict(shape=(40, 64, 64), n_particles=4, classes=2, seed=0)
    args.update(kwargs)
    with pytest.raises(DeepETPickerError) as err:
        simulate_tomogram(**args)
    for word in words:
        assert word in str(err.value)


def test_simulate_dataset_writes_a_ready_dataset(tmp_path):
    from deepetpicker.config import load_preprocess_config
    from deepetpicker.io.picks import read_picks
    from deepetpicker.io.tomogram import load_tomogram

    events = []
    config_path = simulate_dataset(tmp_path / "data", n=2, shape=(40, 64, 64), classes=2,
                                   seed=3, n_particles=6, voxel_size=8.5,
                                   progress=events.append)
    out = tmp_path / "data"
    assert config_path == out / "configs" / "simulated.py"
    names = sorted(p.name for p in (out / "raw").iterdir())
    assert names == ["sim_00.coords", "sim_00.mrc", "sim_01.coords", "sim_01.mrc"]
    cfg = load_preprocess_config(config_path)
    assert cfg.num_cls == 2 and cfg.ocp_diameter == [24, 16] and cfg.label_diameter == 9
    assert cfg.label_diameters == [15, 9] and cfg.label_name == "gaussian15-9"  # 24 > 2.5 x 9
    assert cfg.base_path == str(out) and cfg.tomo_path == str(out / "raw")
    assert cfg.coord_path == str(out / "raw") and cfg.label_type == "gaussian"

    summary = json.loads((out / "particles.json").read_text())
    assert [(c["name"], c["diameter"]) for c in summary["classes"]] == [
        ("ribosome", 24.0), ("proteasome", 16.0)]
    assert summary["voxel_size"] == 8.5
    for entry in summary["tomograms"]:
        tomo = load_tomogram(out / "raw" / f"{entry['name']}.mrc", mmap=False)
        assert tomo.shape == (40, 64, 64) and tomo.voxel_size == pytest.approx(8.5)
        picks = read_picks(out / "raw" / f"{entry['name']}.coords", shape=tomo.shape)
        assert len(picks) == entry["n_particles"] == 6
        assert picks.counts(2) == {int(k): v for k, v in entry["counts"].items()}
        assert 3.0 <= entry["defocus_um"] <= 5.0
    assert events[-1].stage == "simulate" and events[-1].done == events[-1].total == 2

    # same seed, same dataset; the picks match simulate_tomogram's for the recorded seed
    simulate_dataset(tmp_path / "again", n=2, shape=(40, 64, 64), classes=2, seed=3,
                     n_particles=6, voxel_size=8.5)
    for name in ("sim_00", "sim_01"):
        a = load_tomogram(out / "raw" / f"{name}.mrc", mmap=False).data
        b = load_tomogram(tmp_path / "again" / "raw" / f"{name}.mrc", mmap=False).data
        assert np.array_equal(a, b)
        assert ((out / "raw" / f"{name}.coords").read_text()
                == (tmp_path / "again" / "raw" / f"{name}.coords").read_text())


def test_simulate_dataset_refuses_bad_output(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(DeepETPickerError, match="is a file"):
        simulate_dataset(target, n=1, shape=(40, 64, 64), classes=1, n_particles=2)
    with pytest.raises(DeepETPickerError, match="n=0"):
        simulate_dataset(tmp_path / "x", n=0)


def test_simulate_into_a_folder_with_data_refuses_or_reuses_the_same_dataset(tmp_path):
    settings = dict(n=1, shape=(40, 64, 64), classes=1, n_particles=2, seed=5)
    mine = tmp_path / "mine"
    (mine / "raw").mkdir(parents=True)
    (mine / "raw" / "TS_01.mrc").write_bytes(b"my tomogram")
    with pytest.raises(DeepETPickerError, match=r"TS_01.mrc.*mix old and new.*empty or new"):
        simulate_dataset(mine, reuse=True, **settings)
    assert sorted(p.name for p in (mine / "raw").iterdir()) == ["TS_01.mrc"]

    out = tmp_path / "sim"
    config = simulate_dataset(out, **settings)
    stamp = (out / "raw" / "sim_00.mrc").stat().st_mtime_ns
    with pytest.raises(DeepETPickerError, match="already holds a dataset"):
        simulate_dataset(out, **settings)
    events = []
    assert simulate_dataset(out, reuse=True, progress=events.append, **settings) == config
    assert (out / "raw" / "sim_00.mrc").stat().st_mtime_ns == stamp
    assert any("kept as it is" in (e.message or "") for e in events)
    with pytest.raises(DeepETPickerError, match="already holds a dataset"):
        simulate_dataset(out, reuse=True, **dict(settings, seed=6))   # another dataset
