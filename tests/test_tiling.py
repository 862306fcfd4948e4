"""Overlap-tile scan: tile placement, exact stitching, centre-region ownership."""

import numpy as np
import pytest
import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.picking.tiling import (
    TTA_SETS,
    TileTransform,
    count_tiles,
    kept_ranges,
    plan_tiles,
    read_tile,
    scan,
    tile_starts,
    tta_transforms,
    with_tta,
)
from deepetpicker.progress import Cancelled, CancelToken, Reporter


def test_tile_starts_hand_computed():
    assert tile_starts(200, 72, 12) == [0, 48, 96, 128]   # stride 48, last flush at 200-72
    assert tile_starts(100, 72, 12) == [0, 28]
    assert tile_starts(72, 72, 12) == [0]
    assert tile_starts(144, 72, 0) == [0, 72]
    assert tile_starts(145, 72, 0) == [0, 72, 73]
    assert tile_starts(30, 72, 12) == [-21]               # shorter than a tile: centred
    assert tile_starts(1, 8, 2) == [-3]


def test_kept_ranges_partition_the_axis_and_respect_the_pad():
    for length in (1, 7, 31, 32, 33, 50, 97):
        for pad in (0, 3, 6, 12):
            ranges = kept_ranges(length, 32, pad)
            assert ranges[0][1] == 0 and ranges[-1][2] == length
            for (_s0, _lo0, hi0), (_s1, lo1, _hi1) in zip(ranges, ranges[1:]):
                assert hi0 == lo1                              # contiguous, no overlap
            for start, lo, hi in ranges:
                assert lo < hi
                assert start <= lo and hi <= start + 32        # inside its own tile
                if lo > 0:
                    assert lo - start >= pad                   # centre region only
                if hi < length:
                    assert start + 32 - hi >= pad


def test_bad_pad_is_a_clear_error():
    with pytest.raises(DeepETPickerError, match="Pad size 36 is too large for patch size 72"):
        tile_starts(100, 72, 36)
    with pytest.raises(DeepETPickerError, match="negative"):
        tile_starts(100, 72, -1)


def test_every_voxel_is_kept_by_exactly_one_tile():
    shape = (37, 50, 29)
    hits = np.zeros(shape, dtype=np.int32)
    tiles = plan_tiles(shape, 32, 6)
    # stride 20: z [0, 5], y [0, 18], x [-1]
    assert len(tiles) == count_tiles(shape, 32, 6) == 2 * 2 * 1
    for tile in tiles:
        hits[tile.keep] += 1
    assert (hits == 1).all()


def _affine_predictor(batch):
    """An identity-like network: two channels that are fixed functions of each voxel."""
    return torch.cat([2.0 * batch + 1.0, batch * batch], dim=1)


@pytest.mark.parametrize("shape", [(37, 50, 29), (5, 9, 20), (16, 16, 16), (3, 41, 2)])
@pytest.mark.parametrize("pad", [0, 3, 6])
def test_identity_like_predictor_reproduces_the_volume_exactly(shape, pad):
    rng = np.random.default_rng(0)
    volume = rng.normal(size=shape).astype(np.float32)
    out = scan(volume, _affine_predictor, patch_size=16, pad=pad, batch_size=3)
    assert out.shape == (2,) + shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], 2.0 * volume + 1.0)
    np.testing.assert_array_equal(out[1], volume * volume)


@pytest.mark.parametrize("pad", [0, 6, 12])
def test_large_pads_with_a_32_patch(pad):
    rng = np.random.default_rng(1)
    volume = rng.normal(size=(33, 70, 45)).astype(np.float32)
    out = scan(volume, lambda b: b.numpy() * 3.0, patch_size=32, pad=pad, batch_size=4)
    np.testing.assert_array_equal(out[0], volume * np.float32(3.0))


def _position_predictor(batch):
    """Channels 0-2: each voxel's z, y, x offset inside its tile."""
    n = batch.shape[-1]
    idx = torch.arange(n, dtype=torch.float32)
    grids = torch.meshgrid(idx, idx, idx, indexing="ij")
    return torch.stack(grids)[None].expand(batch.shape[0], 3, n, n, n)


@pytest.mark.parametrize("shape,pad", [((37, 50, 29), 6), ((33, 70, 45), 12), ((20, 9, 64), 0),
                                       ((40, 41, 42), 12)])
def test_every_voxel_comes_from_a_tile_centre(shape, pad):
    n = 32
    out = scan(np.zeros(shape, np.float32), _position_predictor, n, pad, batch_size=2)
    for axis, length in enumerate(shape):
        offset = np.moveaxis(out[axis], axis, 0)             # offset along this axis
        coord = np.arange(length).reshape(-1, 1, 1)
        start = coord - offset
        # every voxel of a plane comes from tiles with the same start along this axis
        assert (start == start[:, :1, :1]).all()
        starts = start[:, 0, 0].astype(int)
        assert set(starts.tolist()) <= set(tile_starts(length, n, pad))
        local = offset[:, 0, 0].astype(int)
        coord = coord[:, 0, 0]
        near_start = local >= pad
        near_end = n - 1 - local >= pad
        assert (near_start | (coord < pad)).all()
        assert (near_end | (coord >= length - pad)).all()


def test_reads_a_read_only_memory_map_and_reports_each_batch(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.normal(size=(20, 30, 25)).astype(np.float32)
    path = tmp_path / "vol.npy"
    np.save(path, data)
    volume = np.load(path, mmap_mode="r")
    events = []
    reporter = Reporter(progress=events.append)
    out = scan(volume, _affine_predictor, 16, 4, batch_size=5, report=reporter, item="vol")
    np.testing.assert_array_equal(out[0], 2.0 * data + 1.0)
    total = (count_tiles(volume.shape, 16, 4) + 4) // 5
    assert [e.done for e in events] == list(range(1, total + 1))
    assert all(e.total == total and e.item == "vol" for e in events)


def test_cancel_stops_the_scan_after_the_current_batch():
    token = CancelToken()
    calls = []

    def predictor(batch):
        calls.append(len(batch))
        token.cancel()
        return batch

    with pytest.raises(Cancelled):
        scan(np.zeros((40, 40, 40), np.float32), predictor, 16, 2, batch_size=2,
             report=Reporter(cancel=token))
    assert calls == [2]


def test_writes_into_a_given_output_array_and_checks_channels():
    volume = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    out = np.full((1, 5, 6, 7), np.nan, dtype=np.float32)
    result = scan(volume, lambda b: b, 8, 1, out=out)
    assert result is out
    np.testing.assert_array_equal(out[0], volume)
    with pytest.raises(ValueError, match="2 channels, expected 1"):
        scan(volume, lambda b: torch.cat([b, b], 1), 8, 1, num_classes=1)


def test_read_tile_mirrors_outside_the_volume():
    volume = np.arange(4, dtype=np.float32).reshape(1, 1, 4) * np.ones((3, 3, 1), np.float32)
    tile = read_tile(volume, (-1, -1, -2), 6)
    assert tile.shape == (6, 6, 6)
    np.testing.assert_array_equal(tile[1, 1], [2, 1, 0, 1, 2, 3])


# --------------------------------------------------------------------------------------------
# Test-time augmentation
# --------------------------------------------------------------------------------------------
def _box_sigmoid_predictor(batch):
    """Equivariant under every flip and XY quarter turn: a symmetric 3x3x3 box filter (zero
    padding) and pointwise functions of its result."""
    box = torch.nn.functional.conv3d(batch, torch.ones(1, 1, 3, 3, 3) / 27.0, padding=1)
    return torch.cat([torch.sigmoid(box), batch * batch], dim=1)


def _skewed_predictor(batch):
    """Not equivariant: a position ramp inside the tile, a shift along x, a one-sided filter."""
    n = batch.shape[-1]
    idx = torch.arange(n, dtype=torch.float32)
    ramp = 1.0 + 0.01 * (idx[:, None, None] + 2 * idx[None, :, None] + 3 * idx[None, None, :])
    kernel = torch.arange(27, dtype=torch.float32).reshape(1, 1, 3, 3, 3) / 100.0
    return torch.cat([batch * ramp, torch.roll(batch, 1, dims=-1),
                      torch.nn.functional.conv3d(batch, kernel, padding=1)], dim=1)


def _skewed_numpy(tile):
    """``_skewed_predictor`` of one (n, n, n) tile in numpy."""
    n = tile.shape[-1]
    idx = np.arange(n, dtype=np.float32)
    ramp = 1.0 + 0.01 * (idx[:, None, None] + 2 * idx[None, :, None] + 3 * idx[None, None, :])
    kernel = np.arange(27, dtype=np.float32).reshape(3, 3, 3) / 100.0
    padded = np.pad(tile, 1)
    corr = sum(kernel[a, b, c] * padded[a:a + n, b:b + n, c:c + n]
               for a in range(3) for b in range(3) for c in range(3))
    return np.stack([tile * ramp, np.roll(tile, 1, axis=-1), corr])


def _hand_forward(tile, flips, turns):
    """The transform by hand: mirror the named axes of (z, y, x), then turn y towards x."""
    axes = tuple("zyx".index(a) for a in flips)
    out = np.flip(tile, axes) if axes else tile
    return np.rot90(out, turns, axes=(1, 2))


def _hand_inverse(scores, flips, turns):
    """Inverse of :func:`_hand_forward` on (K, z, y, x) scores."""
    out = np.rot90(scores, -turns, axes=(2, 3))
    axes = tuple(1 + "zyx".index(a) for a in flips)
    return np.flip(out, axes) if axes else out


def _hand_tta(tile, transforms):
    outs = [_hand_inverse(_skewed_numpy(np.ascontiguousarray(_hand_forward(tile, f, k))), f, k)
            for f, k in transforms]
    return np.mean(outs, axis=0)


def test_tta_sets_are_distinct_symmetries_that_keep_z_and_invert_exactly():
    flips, full = TTA_SETS["flips"], TTA_SETS["full"]
    assert len(flips) == 8 and len(full) == 16 and tta_transforms(True) == flips
    assert tta_transforms(False) == tta_transforms(None) == tta_transforms("off") == ()
    assert tta_transforms("FULL") == full and flips[0].name == "identity"
    assert {t.name for t in flips} >= {"flip z", "flip y", "flip x", "flip zyx"}
    assert {"rot90", "rot270", "flip zx rot90"} <= {t.name for t in full}
    cube = torch.arange(2 * 4 ** 3, dtype=torch.float32).reshape(1, 2, 4, 4, 4)
    images = set()
    for t in full:
        moved = t.apply(cube)
        assert torch.equal(t.invert(moved), cube)
        # z stays the z axis: each z-plane goes to one z-plane
        assert {tuple(sorted(moved[0, 0, z].flatten().tolist())) for z in range(4)} == {
            tuple(sorted(cube[0, 0, z].flatten().tolist())) for z in range(4)}
        images.add(tuple(moved.flatten().tolist()))
    assert len(images) == 16                                     # all different maps
    assert {tuple(t.apply(cube).flatten().tolist()) for t in flips} <= images
    with pytest.raises(DeepETPickerError, match="'rotate' is not known.*'flips' or 'full'"):
        tta_transforms("rotate")


@pytest.mark.parametrize("tta", ["flips", "full"])
@pytest.mark.parametrize("shape,pad", [((37, 50, 29), 3), ((16, 16, 16), 0), ((5, 40, 9), 6)])
def test_tta_of_an_equivariant_predictor_equals_no_tta(tta, shape, pad):
    rng = np.random.default_rng(3)
    volume = rng.normal(size=shape).astype(np.float32)
    plain = scan(volume, _box_sigmoid_predictor, 16, pad, batch_size=3)
    averaged = scan(volume, with_tta(_box_sigmoid_predictor, tta_transforms(tta)), 16, pad,
                    batch_size=3)
    np.testing.assert_allclose(averaged, plain, rtol=1e-6, atol=1e-6)
    # the one-sided predictor is not equivariant: there TTA does change the scores
    skewed = scan(volume, _skewed_predictor, 16, pad, batch_size=3)
    assert not np.allclose(scan(volume, with_tta(_skewed_predictor, tta_transforms(tta)), 16,
                                pad, batch_size=3), skewed, atol=1e-3)


@pytest.mark.parametrize("tta", ["flips", "full"])
def test_tta_equals_the_average_of_transformed_predictions_computed_by_hand(tta):
    transforms = tta_transforms(tta)
    by_hand = [(t.flips, t.quarter_turns) for t in transforms]
    rng = np.random.default_rng(4)
    # one tile: the transform of the tile is the transform of the volume
    tile = rng.normal(size=(16, 16, 16)).astype(np.float32)
    got = scan(tile, with_tta(_skewed_predictor, transforms), 16, 0)
    np.testing.assert_allclose(got, _hand_tta(tile, by_hand), rtol=1e-5, atol=1e-5)
    # many tiles, a batch at a time: every tile's kept region is its own hand-made average
    volume = rng.normal(size=(30, 41, 23)).astype(np.float32)
    calls = []

    def counted(batch):
        calls.append(batch.shape[0])
        return _skewed_predictor(batch)

    got = scan(volume, with_tta(counted, transforms), 16, 4, batch_size=3)
    tiles = plan_tiles(volume.shape, 16, 4)
    assert len(calls) == len(transforms) * ((len(tiles) + 2) // 3)   # one pass per transform
    for t in tiles:
        expected = _hand_tta(read_tile(volume, t.start, 16), by_hand)
        local = tuple(slice(k.start - s, k.stop - s) for k, s in zip(t.keep, t.start))
        np.testing.assert_allclose(got[(slice(None),) + t.keep],
                                   expected[(slice(None),) + local], rtol=1e-5, atol=1e-5)


def test_tta_leaves_the_tile_buffer_alone_and_checks_between_passes():
    passes = []

    def identity(batch):                       # returns the tensor it was given
        passes.append(1)
        if len(passes) == 3:
            token.cancel()
        return batch

    volume = np.random.default_rng(5).normal(size=(16, 16, 16)).astype(np.float32)
    token = CancelToken()
    out = scan(volume, with_tta(identity, TTA_SETS["flips"]), 16, 0)
    np.testing.assert_allclose(out[0], volume, rtol=1e-6, atol=1e-6)
    passes.clear()
    token = CancelToken()
    with pytest.raises(Cancelled):
        scan(volume, with_tta(identity, TTA_SETS["flips"], check=token.check), 16, 0)
    assert len(passes) == 3                    # stopped within the batch, not after 8 passes
    assert with_tta(identity, ()) is identity
    with pytest.raises(ValueError, match="square tiles"):
        with_tta(identity, [TileTransform(quarter_turns=1)])(torch.zeros(1, 1, 4, 4, 5))
