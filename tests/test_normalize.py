"""Chunked statistics and streamed normalisation of tomograms."""

import mrcfile
import numpy as np
import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.tomogram import load_tomogram, write_tomogram
from deepetpicker.normalize import (
    apply_normalization,
    canonical_norm_type,
    chunked_stats,
    normalize_to_file,
)
from deepetpicker.progress import Cancelled, CancelToken, Reporter

SHAPE = (17, 12, 14)   # 17 slices: with chunk=4, five slabs, the last one partial


def volume(seed=0, loc=3.0, scale=2.0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return rng.normal(loc, scale, shape).astype(np.float32)


def test_chunked_stats_match_numpy_and_report_each_slab():
    data = volume()
    calls = []
    stats = chunked_stats(data, chunk=4, report=lambda *a, **k: calls.append((a, k)))
    ref = data.astype(np.float64)
    assert stats.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert stats.std == pytest.approx(ref.std(), rel=1e-12)
    assert (stats.min, stats.max) == (float(ref.min()), float(ref.max()))
    assert [a for a, _ in calls] == [("statistics", k, 5) for k in range(1, 6)]
    mean, std, vmin, vmax = stats                      # unpacks like a tuple
    assert vmin <= mean <= vmax and std > 0


def test_chunked_stats_accurate_far_from_zero():
    data = volume(seed=1, loc=30000.0, scale=0.5).astype(np.float64)
    stats = chunked_stats(data, chunk=3)
    assert stats.std == pytest.approx(data.std(), rel=1e-9)
    assert stats.mean == pytest.approx(data.mean(), rel=1e-12)


def test_zscore_on_the_chunked_path(tmp_path):
    src = write_tomogram(tmp_path / "raw.mrc", volume(), voxel_size=13.5)
    dst = tmp_path / "out" / "raw.mrc"
    stats = normalize_to_file(src, dst, "standardization", chunk=4)
    out = load_tomogram(dst, mmap=False)
    assert out.shape == SHAPE and out.data.dtype == np.float32
    assert out.voxel_size == pytest.approx(13.5)
    assert abs(float(out.data.astype(np.float64).mean())) < 1e-3
    assert abs(float(out.data.astype(np.float64).std()) - 1.0) < 1e-3
    expected = (volume().astype(np.float64) - stats.mean) / stats.std
    np.testing.assert_allclose(out.data, expected, atol=1e-5)
    with mrcfile.open(dst) as mrc:
        assert mrc.header.dmin == pytest.approx(expected.min(), abs=1e-4)
        assert mrc.header.dmax == pytest.approx(expected.max(), abs=1e-4)
        assert mrc.header.rms == pytest.approx(1.0, abs=1e-4)


def test_minmax_range(tmp_path):
    data = volume(seed=2, loc=-50, scale=10)
    src = write_tomogram(tmp_path / "raw.mrc", data)
    dst = tmp_path / "norm.mrc"
    normalize_to_file(src, dst, "normalization", chunk=5)
    out = load_tomogram(dst, mmap=False).data
    assert out.min() == pytest.approx(0.0, abs=1e-7)
    assert out.max() == pytest.approx(1.0, abs=1e-6)
    d = data.astype(np.float64)
    np.testing.assert_allclose(out, (d - d.min()) / (d.max() - d.min()), atol=1e-6)


def test_integer_input(tmp_path):
    data = np.random.default_rng(4).integers(-300, 300, SHAPE).astype(np.int16)
    src = write_tomogram(tmp_path / "raw.mrc", data, dtype=np.int16)
    normalize_to_file(src, tmp_path / "n.mrc", chunk=4)
    out = load_tomogram(tmp_path / "n.mrc", mmap=False).data.astype(np.float64)
    assert abs(out.mean()) < 1e-3 and abs(out.std() - 1) < 1e-3


def test_apply_normalization_matches_file_output(tmp_path):
    data = volume(seed=5)
    stats = chunked_stats(data, chunk=4)
    block = apply_normalization(data[3:6], stats)
    assert block.dtype == np.float32
    expected = (data[3:6].astype(np.float64) - stats.mean) / stats.std
    np.testing.assert_allclose(block, expected, atol=1e-6)
    mm = apply_normalization(data, stats, "min-max")
    assert mm.min() == pytest.approx(0.0, abs=1e-7) and mm.max() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_refused_and_nothing_written(tmp_path, bad):
    data = volume()
    data[9, 2, 7] = bad
    src = write_tomogram(tmp_path / "raw.mrc", data)
    dst = tmp_path / "out" / "raw.mrc"
    with pytest.raises(DeepETPickerError) as err:
        normalize_to_file(src, dst, chunk=4)
    msg = str(err.value)
    assert "raw.mrc" in msg and "NaN or Inf" in msg and "x=7, y=2, z=9" in msg
    assert not dst.exists()


@pytest.mark.parametrize("norm_type", ["standardization", "normalization"])
def test_constant_volume_is_refused(tmp_path, norm_type):
    src = write_tomogram(tmp_path / "flat.mrc", np.full(SHAPE, 2.5, np.float32))
    with pytest.raises(DeepETPickerError, match=r"flat\.mrc is constant \(every voxel is 2\.5\)"):
        normalize_to_file(src, tmp_path / "n.mrc", norm_type, chunk=4)
    assert list(tmp_path.iterdir()) == [src]


def test_unknown_norm_type():
    assert canonical_norm_type("Z-Score") == "standardization"
    assert canonical_norm_type("minmax") == "normalization"
    with pytest.raises(DeepETPickerError, match="'histogram'"):
        canonical_norm_type("histogram")


def test_cancel_between_chunks_leaves_no_partial_file(tmp_path):
    src = write_tomogram(tmp_path / "raw.mrc", volume())
    dst = tmp_path / "raw_norm.mrc"
    dst.write_bytes(b"previous output")
    token = CancelToken()
    seen = []

    def progress(event):
        seen.append((event.stage, event.done))
        if event.stage == "normalise" and event.done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        normalize_to_file(src, dst, chunk=4, report=Reporter(progress, token))
    assert seen[-1] == ("normalise", 2)                  # stopped after the second slab
    assert dst.read_bytes() == b"previous output"         # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.mrc", "raw_norm.mrc"]
