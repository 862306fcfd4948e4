"""Overlap-tile scan: tile placement, exact stitching, centre-region ownership."""

import numpy as np
import pytest
import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.infer.tiling import (count_tiles, kept_ranges, plan_tiles, read_tile, scan,
                                       tile_starts)
from deepetpicker.jobs import CancelToken, Cancelled, Reporter


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
            for (s0, lo0, hi0), (s1, lo1, hi1) in zip(ranges, ranges[1:]):
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
    assert len(tiles) == count_tiles(shape, 32, 6) == 2 * 2 * 1   # stride 20: z [0, 5], y [0, 18], x [-1]
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
