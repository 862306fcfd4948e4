"""Region-of-interest masks in training: background patches are drawn inside the mask,
validation leaves out picks and particles outside it, and the setting travels through the
config file and the command line."""

import json

import numpy as np
import pytest
import torch

from deepetpicker.cli import main
from deepetpicker.config import TrainConfig, load_train_config, save_config
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.train.dataset import (
    PatchDataset,
    attach_masks,
    draw_in_mask,
    load_entries,
    mask_slice_counts,
)
from deepetpicker.train.job import Trainer

from train_fixtures import make_preprocessed, train_config

SHAPE = (24, 40, 40)
N = 16


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    pre, truth = make_preprocessed(root, n_tomos=2, n_particles=6, shape=SHAPE)
    return pre, truth, root


def slab_mask():
    """Inside: z 6-13 and x below 20 (a slab cut in half)."""
    mask = np.zeros(SHAPE, np.uint8)
    mask[6:14, :, :20] = 1
    return mask


def write_mask(path, mask):
    return write_tomogram(path, mask, 10.0, dtype=np.uint8)


def test_background_centres_fall_inside_the_mask(toy, tmp_path):
    pre, _, _ = toy
    cfg = train_config(pre)
    mask = slab_mask()
    path = write_mask(tmp_path / "slab.mrc", mask)
    plain = PatchDataset(load_entries(cfg, [0, 1], "train_set_ids"), N, 1,
                         background_fraction=0.95, seed=4)
    entries = load_entries(cfg, [0, 1], "train_set_ids")
    attach_masks(entries, path)
    assert [e.mask_path for e in entries] == [path, path]
    ds = PatchDataset(entries, N, 1, background_fraction=0.95, seed=4)
    assert ds.n_background == 228 and ds.mask_counts[0].tolist() == \
        [0] * 6 + [40 * 20] * 8 + [0] * 10
    centres, tomos = [], set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds.particles), len(ds)):
            k, c = ds.sample_centre(i, np.random.default_rng([ds.seed, epoch, i]))
            centres.append(c)
            tomos.add(k)
    centres = np.array(centres)
    assert len(centres) == 3 * 228 and tomos == {0, 1}
    assert all(mask[tuple(c)] for c in centres)
    # spread over the whole region, not stuck in a corner
    assert set(centres[:, 0]) == set(range(6, 14))
    assert centres[:, 2].min() <= 1 and centres[:, 2].max() >= 18
    # particle patches are drawn as without a mask
    for i in range(len(ds.particles)):
        a = ds.sample_centre(i, np.random.default_rng([4, 0, i]))
        b = plain.sample_centre(i, np.random.default_rng([4, 0, i]))
        assert a[0] == b[0] and (a[1] == b[1]).all()
    # a background item is a patch like any other
    image, target = ds[len(ds) - 1]
    assert image.shape == (1, N, N, N) and target.shape == (1, N, N, N)


def test_draws_are_uniform_inside_dense_and_sparse_masks():
    rng = np.random.default_rng(0)
    dense = np.zeros(SHAPE, np.uint8)
    dense[:, :, :20] = 1                               # half the volume: found by trying
    counts = mask_slice_counts(dense)
    draws = np.array([draw_in_mask(dense, rng, counts) for _ in range(2000)])
    assert dense[tuple(draws.T)].all()
    share = np.mean(draws[:, 2] < 10)                  # half of the region
    assert 0.45 < share < 0.55
    sparse = np.zeros(SHAPE, np.uint8)                 # 8 voxels in 38400: slice by slice
    spots = [(1, 2, 3), (1, 30, 31), (5, 5, 5), (9, 0, 39), (12, 20, 20), (17, 39, 0),
             (23, 1, 1), (23, 38, 38)]
    for spot in spots:
        sparse[spot] = 7
    counts = mask_slice_counts(sparse)
    assert counts.sum() == 8 and counts[23] == 2
    draws = [tuple(int(v) for v in draw_in_mask(sparse, rng, counts, tries=5))
             for _ in range(4000)]
    seen = {spot: draws.count(spot) for spot in spots}
    assert sum(seen.values()) == 4000                  # only the marked voxels
    assert all(420 < n < 580 for n in seen.values()), seen


def test_an_empty_mask_is_a_clear_error(toy, tmp_path):
    pre, _, _ = toy
    empty = write_mask(tmp_path / "empty.mrc", np.zeros(SHAPE, np.uint8))
    entries = load_entries(train_config(pre), [0], "train_set_ids")
    attach_masks(entries, empty)
    with pytest.raises(DeepETPickerError, match=r"The mask .*empty.mrc of tomogram 0 \(tomo0.*"
                                                r"no non-zero voxel.*background_fraction to 0"):
        PatchDataset(entries, N, 1, background_fraction=0.5)
    assert len(PatchDataset(entries, N, 1)) == 6       # no background patches: no draw
    with pytest.raises(DeepETPickerError, match="no non-zero voxel"):
        draw_in_mask(np.zeros(SHAPE), np.random.default_rng(0), np.zeros(SHAPE[0], int))


def test_masks_are_matched_by_name_and_their_shape_is_checked(toy, tmp_path):
    pre, _, _ = toy
    cfg = train_config(pre)
    folder = tmp_path / "masks"
    folder.mkdir()
    write_mask(folder / "tomo0_mask.mrc", slab_mask())
    write_mask(folder / "tomo1.mrc", slab_mask())
    entries = load_entries(cfg, [0, 1], "train_set_ids")
    attach_masks(entries, folder)
    assert [e.mask_path.name for e in entries] == ["tomo0_mask.mrc", "tomo1.mrc"]

    (folder / "tomo1.mrc").unlink()
    with pytest.raises(DeepETPickerError, match="has no mask for tomo1.mrc"):
        attach_masks(load_entries(cfg, [0, 1], "train_set_ids"), folder)
    small = write_mask(tmp_path / "small.mrc", np.ones((24, 40, 30), np.uint8))
    with pytest.raises(DeepETPickerError) as err:
        attach_masks(load_entries(cfg, [1], "train_set_ids"), small)
    assert str(small) in str(err.value) and "data_std/tomo1.mrc" in str(err.value)
    assert "(24, 40, 30)" in str(err.value) and "(24, 40, 40)" in str(err.value)
    with pytest.raises(DeepETPickerError, match=r"mask_path = '.*nowhere.mrc': no such mask"):
        attach_masks(entries, tmp_path / "nowhere.mrc")


def test_mask_path_round_trips_and_the_file_stays_readable_as_json(toy, tmp_path):
    pre, _, _ = toy
    mask = write_mask(tmp_path / "slab.mrc", slab_mask())
    cfg = train_config(pre, mask_path=str(mask))
    path = save_config(cfg, tmp_path / "train.py")
    text = path.read_text()
    data = json.loads(text[len("train_configs="):])     # as the original program reads it
    assert data["mask_path"] == str(mask)
    again = load_train_config(path)
    assert again.mask_path == str(mask) and again.to_dict() == cfg.to_dict()
    again.validate(check_paths=True)
    # left out when not set
    plain = save_config(train_config(pre), tmp_path / "plain.py")
    assert "mask_path" not in plain.read_text() and load_train_config(plain).mask_path == ""
    with pytest.raises(DeepETPickerError, match=r"'mask_path' = 5.*folder of masks"):
        train_config(pre, mask_path=5)
    gone = train_config(pre, mask_path=str(tmp_path / "gone.mrc"))
    with pytest.raises(DeepETPickerError, match=r"'mask_path' = .*gone.mrc.*does not exist"):
        gone.validate(check_paths=True)
    assert isinstance(gone, TrainConfig)


def test_mask_options_of_the_commands_reach_the_config_and_the_job(toy, tmp_path, monkeypatch,
                                                                  capsys):
    import deepetpicker.train.job as job

    pre, _, _ = toy
    mask = write_mask(tmp_path / "slab.mrc", slab_mask())
    pre_path = save_config(pre, tmp_path / "pre.py")
    out = tmp_path / "train.py"
    assert main(["train-config", str(pre_path), "--train-ids", "0", "--val-ids", "1",
                 "--mask", str(mask), "-o", str(out)]) == 0
    assert load_train_config(out).mask_path == str(mask)
    wrong = write_mask(tmp_path / "wrong.mrc", np.ones((8, 8, 8), np.uint8))
    assert main(["train-config", str(pre_path), "--train-ids", "0", "--val-ids", "1",
                 "--mask", str(wrong), "-o", str(tmp_path / "other.py")]) == 2
    err = capsys.readouterr().err
    assert "wrong.mrc has shape (8, 8, 8)" in err and "tomo0.mrc" in err
    assert not (tmp_path / "other.py").exists()

    seen = []
    monkeypatch.setattr(job, "train", lambda cfg, *a, **k: seen.append(cfg.mask_path))
    assert main(["train", str(out)]) == 0
    other = write_mask(tmp_path / "other.mrc", slab_mask())
    assert main(["train", str(out), "--mask", str(other)]) == 0
    assert seen == [str(mask), str(other)]


def test_validation_with_a_mask_scores_only_inside_it(toy, tmp_path, monkeypatch):
    import deepetpicker.picking.settings as settings
    import deepetpicker.picking.tiling as tiling

    pre, truth, _ = toy
    mask = slab_mask()
    path = write_mask(tmp_path / "slab.mrc", mask)
    particles = truth["tomo1"]
    inside = mask[tuple(np.rint(particles.zyx).astype(int).T)].astype(bool)
    assert 0 < inside.sum() < len(particles)
    false = np.array([[30.0, 5.0, 10.0], [35.0, 20.0, 2.0], [5.0, 30.0, 9.0]])  # x, y, z
    assert [bool(mask[int(z), int(y), int(x)]) for x, y, z in false] == [False, False, True]
    made = Picks(np.ones(len(particles) + 3, int), np.vstack([particles.xyz, false]),
                 np.linspace(0.9, 0.5, len(particles) + 3))
    monkeypatch.setattr(settings, "picks_from_scores", lambda *a, **k: made)
    scans = []
    real_scan = tiling.scan

    def recording_scan(*args, keep_tile=None, **kwargs):
        scans.append(keep_tile)
        return real_scan(*args, keep_tile=keep_tile, **kwargs)

    monkeypatch.setattr(tiling, "scan", recording_scan)

    rows = {}
    for name, mask_path in (("whole", ""), ("masked", str(path))):
        cfg = train_config(pre, dset_name=name, mask_path=mask_path)
        trainer = Trainer(cfg, torch.device("cpu"))
        assert [e.mask_path for e in trainer.val_entries] == [None if not mask_path else path]
        rows[name] = trainer.validate(0)
    whole, masked = rows["whole"], rows["masked"]
    n_in = int(inside.sum())
    assert whole["n_picks"] == len(particles) + 3
    assert whole["precision"] == pytest.approx(len(particles) / (len(particles) + 3))
    assert masked["n_picks"] == n_in + 1                # the particles inside + one false pick
    assert masked["precision"] == pytest.approx(n_in / (n_in + 1))
    assert masked["recall"] == whole["recall"] == 1.0  # particles outside are not missed
    assert scans[0] is None and scans[1].skipped > 0 and scans[1].run > 0
