"""Training data: dataset checks, patch sampling, targets, augmentation, determinism."""

import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deepetpicker.errors import DeepETPickerError
from deepetpicker.train.augment import (
    AugmentSettings,
    SampleTransform,
    draw_transform,
    mirror,
    resample,
    rotation_matrix,
)
from deepetpicker.train.dataset import PatchDataset, check_patch_fits, load_entries, one_hot

from train_fixtures import make_preprocessed, train_config

N = 16


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    pre, truth = make_preprocessed(root, n_tomos=2, n_particles=6)
    return pre, truth


@pytest.fixture(scope="module")
def toy3(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy3")
    pre, truth = make_preprocessed(root, n_tomos=1, n_particles=6, num_cls=3)
    return pre, truth


def test_entries_follow_num_name_ids(toy):
    pre, truth = toy
    cfg = train_config(pre, "0-1", "1")
    entries = load_entries(cfg, cfg.train_set_ids, "train_set_ids")
    assert [(e.index, e.stem) for e in entries] == [(0, "tomo0"), (1, "tomo1")]
    assert entries[0].shape == (24, 40, 40)
    np.testing.assert_allclose(entries[1].picks.xyz, truth["tomo1"].xyz)


def test_unknown_ids_missing_labels_and_oversized_patches_are_explained(toy, tmp_path):
    pre, _ = toy
    cfg = train_config(pre, "0", "5")
    with pytest.raises(DeepETPickerError, match=r"val_set_ids = \[5\]: id 5 is not in the "
                                                r"dataset.*0: tomo0, 1: tomo1"):
        load_entries(cfg, cfg.val_set_ids, "val_set_ids")
    entries = load_entries(cfg, [0], "train_set_ids")
    with pytest.raises(DeepETPickerError, match=r"patch_size 32 is larger than tomogram 0 "
                                                r"\(tomo0.*24, 40, 40.*patch_size 24"):
        check_patch_fits(entries, 32)

    copy = tmp_path / "ds"
    shutil.copytree(pre.base_path, copy)
    moved = train_config(pre, "0", "1", base_path=str(copy), label_path=str(copy / "nolabels"),
                         coord_path=str(copy / "coords"), tomo_path=str(copy / "data_std"))
    with pytest.raises(DeepETPickerError, match="nolabels not found.*run preprocessing"):
        load_entries(moved, [0], "train_set_ids")
    (copy / "gaussian6" / "tomo1.mrc").unlink()
    moved = train_config(pre, "0", "1", base_path=str(copy), label_path=str(copy / "gaussian6"),
                         coord_path=str(copy / "coords"), tomo_path=str(copy / "data_std"))
    with pytest.raises(DeepETPickerError, match=r"weak labels of tomogram 1 \(tomo1\).*"
                                                r"tomo1.mrc not found"):
        load_entries(moved, [1], "train_set_ids")


def test_particle_patches_contain_their_particle(toy):
    pre, truth = toy
    cfg = train_config(pre)
    entries = load_entries(cfg, [0, 1], "train_set_ids")
    ds = PatchDataset(entries, N, 1, jitter=0)
    assert len(ds) == 12
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (1, N, N, N) and image.dtype == torch.float32
        assert target.shape == (1, N, N, N)
        k, zyx = ds.particles[i]
        shape = np.array(entries[k].shape)
        start = np.clip(zyx - N // 2, 0, shape - N)
        local = tuple(zyx - start)
        # the particle centre is labelled and dark (the toy particles are dark balls)
        assert target[(0,) + local] == 1.0
        assert image[(0,) + local] < -0.5
    # with jitter the centre moves by at most N // 5 = 3 voxels (no clipping needed here)
    jittered = PatchDataset(entries, N, 1, jitter=None, seed=1)
    moves = []
    for i in range(len(jittered)):
        image, target = jittered[i]
        k, zyx = jittered.particles[i]
        rng = np.random.default_rng([1, 0, i])
        _, centre = jittered.sample_centre(i, rng)
        moves.append(np.abs(centre - zyx).max())
        assert target.sum() > 0
    assert max(moves) <= 3 and max(moves) > 0


def test_background_share_and_class_targets(toy, toy3):
    pre, _ = toy
    entries = load_entries(train_config(pre), [0, 1], "train_set_ids")
    ds = PatchDataset(entries, N, 1, background_fraction=0.25)
    assert len(ds.particles) == 12 and ds.n_background == 4 and len(ds) == 16
    centres = [ds.sample_centre(i, np.random.default_rng([0, 0, i]))[1] for i in range(12, 16)]
    assert all((c >= 0).all() and (c < np.array([24, 40, 40])).all() for c in centres)

    pre3, truth3 = toy3
    cfg3 = train_config(pre3, "0", "0")
    entries3 = load_entries(cfg3, [0], "train_set_ids")
    ds3 = PatchDataset(entries3, N, 3, jitter=0)
    seen = set()
    for i in range(len(ds3)):
        _, target = ds3[i]
        assert target.shape == (4, N, N, N)
        assert torch.equal(target.sum(dim=0), torch.ones(N, N, N))  # one-hot
        k, zyx = ds3.particles[i]
        start = np.clip(zyx - N // 2, 0, np.array(entries3[k].shape) - N)
        cls = int(entries3[k].picks.classes[i])
        assert target[(cls,) + tuple(zyx - start)] == 1.0
        seen.add(cls)
    assert seen == {1, 2, 3}


def test_one_hot():
    labels = np.array([[[0, 1], [2, 3]]], dtype=np.int16)
    assert one_hot(labels, 1).tolist() == [[[[0, 1], [1, 1]]]]
    hot = one_hot(labels, 3)
    assert hot.shape == (4, 1, 2, 2) and hot[:, 0, 1, 0].tolist() == [0, 0, 1, 0]


def test_items_are_reproducible_and_change_with_epoch(toy):
    pre, _ = toy
    entries = load_entries(train_config(pre), [0, 1], "train_set_ids")
    full = AugmentSettings(elastic=0.5, rotate=0.5, scale=0.5)
    a = PatchDataset(entries, N, 1, augment=full, background_fraction=0.2, seed=3)
    b = PatchDataset(entries, N, 1, augment=full, background_fraction=0.2, seed=3)
    for i in (0, 5, len(a) - 1):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])
    b.set_epoch(1)
    assert not torch.equal(a[0][0], b[0][0])
    # DataLoader workers give the same batches as the main process
    loader0 = DataLoader(a, batch_size=4, num_workers=0)
    loader2 = DataLoader(a, batch_size=4, num_workers=2)
    for (x0, y0), (x2, y2) in zip(loader0, loader2):
        assert torch.equal(x0, x2) and torch.equal(y0, y2)


def test_draw_transform_respects_switches():
    rng = np.random.default_rng(0)
    off = AugmentSettings.off()
    for _ in range(20):
        t = draw_transform(rng, off, 72)
        assert t.shift == (0, 0, 0) and t.flips == () and not t.resamples
    always = AugmentSettings(mirror=True, crop=True, elastic=1.0, rotate=1.0, scale=1.0)
    shifts, flips = [], []
    for _ in range(200):
        t = draw_transform(rng, always, 72)
        shifts.extend(t.shift)
        flips.extend(t.flips)
        assert t.displacement.shape == (3, 3, 3, 3)
        scale = np.cbrt(np.linalg.det(t.matrix))
        assert 0.95 <= scale <= 1.05
        np.testing.assert_allclose(t.matrix @ t.matrix.T, np.eye(3) * scale ** 2, atol=1e-9)
    assert max(shifts) == 9 and min(shifts) == -9  # N // 8
    assert 0.35 < len(flips) / 600 < 0.65


def test_resample_identity_rotation_and_same_transform_on_both():
    size, n = 24, 16
    labels = np.zeros((size,) * 3, np.float32)
    labels[12, 12, 15:18] = 2  # a short bar along x, right of the centre
    image = labels.copy() * 0.5
    ident = SampleTransform((0, 0, 0), (), np.eye(3), None)
    out_i, out_l = resample(image, labels, ident, n)
    np.testing.assert_array_equal(out_l, labels[4:20, 4:20, 4:20])
    np.testing.assert_allclose(out_i, image[4:20, 4:20, 4:20], atol=1e-6)

    # 90 degrees about z turns the x bar into a y bar; labels stay class ids
    turn = SampleTransform((0, 0, 0), (), rotation_matrix((90, 0, 0)), None)
    out_i, out_l = resample(image, labels, turn, n)
    assert set(np.unique(out_l)) == {0.0, 2.0}
    zz, yy, xx = np.nonzero(out_l)
    assert set(zz) == {7} or set(zz) == {8}
    assert len(set(xx)) == 1 and len(set(yy)) == 3

    rng = np.random.default_rng(5)
    blob = np.zeros((size,) * 3, np.float32)
    blob[6:18, 8:16, 9:14] = 1
    wild = SampleTransform((0, 0, 0), (), rotation_matrix((13, -9, 7)) * 1.04,
                           rng.standard_normal((3, 3, 3, 3)) * 1.5)
    out_i, out_l = resample(blob, blob, wild, n)
    out_i, out_l = mirror(out_i, out_l, (0, 2))
    inside = out_l > 0.5
    assert set(np.unique(out_l)) <= {0.0, 1.0} and inside.sum() > 100
    # the image went through the same motion: high inside the label, low outside
    assert out_i[inside].mean() > 0.8 and out_i[~inside].mean() < 0.1


def test_augment_settings_from_config():
    s = AugmentSettings.from_config({"mirror": False, "crop": True, "elastic": 0.0,
                                     "rotate": 0.3, "scale": 0.2, "max_angle": 10.0,
                                     "scale_range": [0.9, 1.1]})
    assert (s.mirror, s.rotate, s.scale_range) == (False, 0.3, (0.9, 1.1))
    assert AugmentSettings.from_config(None) == AugmentSettings.off()
    with pytest.raises(DeepETPickerError, match="augment = 'yes'"):
        AugmentSettings.from_config("yes")
