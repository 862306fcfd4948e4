"""Tomogram files: round trips and the errors for files that cannot be tomograms."""

import mrcfile
import numpy as np
import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.tomogram import (
    check_finite,
    find_tomograms,
    load_tomogram,
    tomogram_shape,
    write_tomogram,
)


def _volume(seed=0, shape=(6, 7, 8)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("suffix", [".mrc", ".rec", ".map"])
@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip_keeps_data_shape_and_voxel_size(tmp_path, suffix, mmap):
    data = _volume()
    path = write_tomogram(tmp_path / f"tomo{suffix}", data, voxel_size=13.48)
    tomo = load_tomogram(path, mmap=mmap)
    assert tomo.shape == (6, 7, 8)
    assert tomo.data.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(tomo.data), data)
    assert tomo.voxel_size == pytest.approx(13.48, abs=1e-3)
    assert tomo.name == "tomo"
    assert isinstance(tomo.data, np.memmap) == mmap


def test_integer_data_is_written_as_float32_and_voxel_size_may_be_missing(tmp_path):
    path = write_tomogram(tmp_path / "t.mrc", np.arange(2 * 3 * 4).reshape(2, 3, 4))
    tomo = load_tomogram(path, mmap=False)
    assert tomo.data.dtype == np.float32 and tomo.data[1, 2, 3] == 23
    assert tomo.voxel_size is None
    assert tomogram_shape(path) == (2, 3, 4)


def test_write_leaves_no_temporary_file(tmp_path):
    write_tomogram(tmp_path / "t.mrc", _volume())
    assert [p.name for p in tmp_path.iterdir()] == ["t.mrc"]


def test_write_refuses_a_2d_array(tmp_path):
    with pytest.raises(DeepETPickerError, match=r"expected a 3-D array, got \(4, 5\)"):
        write_tomogram(tmp_path / "t.mrc", np.zeros((4, 5)))
    assert not (tmp_path / "t.mrc").exists()


def test_random_bytes_are_not_an_mrc_file(tmp_path):
    path = tmp_path / "noise.mrc"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(DeepETPickerError, match="is not an MRC file") as info:
        load_tomogram(path)
    assert str(path) in str(info.value)


def test_a_text_file_is_not_an_mrc_file(tmp_path):
    path = tmp_path / "notes.rec"
    path.write_text("x y z\n1 2 3\n" * 200)
    with pytest.raises(DeepETPickerError, match="notes.rec is not an MRC file"):
        load_tomogram(path, mmap=False)


def test_a_file_smaller_than_the_header(tmp_path):
    path = tmp_path / "tiny.mrc"
    path.write_bytes(b"MAP ")
    with pytest.raises(DeepETPickerError, match="4 bytes, fewer than the 1024-byte MRC header"):
        load_tomogram(path)


@pytest.mark.parametrize("mmap", [True, False])
def test_truncated_file(tmp_path, mmap):
    full = write_tomogram(tmp_path / "full.mrc", _volume())
    path = tmp_path / "cut.mrc"
    path.write_bytes(full.read_bytes()[:-50])
    expected = 1024 + 6 * 7 * 8 * 4
    with pytest.raises(DeepETPickerError,
                       match=f"cut.mrc is truncated: its header describes {expected} bytes but "
                             f"the file has {expected - 50}"):
        load_tomogram(path, mmap=mmap)


def test_a_2d_image_is_not_a_tomogram(tmp_path):
    path = tmp_path / "image.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((5, 6), np.float32))
    with pytest.raises(DeepETPickerError, match=r"shape \(5, 6\), not a 3-D tomogram"):
        load_tomogram(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DeepETPickerError, match="Tomogram file not found: .*nope.mrc"):
        load_tomogram(tmp_path / "nope.mrc")
    with pytest.raises(DeepETPickerError, match="is a folder"):
        load_tomogram(tmp_path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_reports_the_first_bad_voxel(tmp_path, bad):
    data = _volume(shape=(20, 7, 8))
    data[17, 3, 5] = bad
    path = write_tomogram(tmp_path / "bad.mrc", data)
    tomo = load_tomogram(path)
    with pytest.raises(DeepETPickerError, match=r"bad.mrc holds NaN or Inf values \(first at "
                                                r"x=5, y=3, z=17\)"):
        check_finite(tomo, chunk=4)


def test_check_finite_accepts_finite_data_and_reads_the_last_partial_chunk(tmp_path):
    data = _volume(shape=(20, 7, 8))
    assert check_finite(load_tomogram(write_tomogram(tmp_path / "ok.mrc", data)),
                        chunk=16) is None
    data[19, 6, 7] = np.nan                  # the last voxel, in the 4-slice last chunk
    tomo = load_tomogram(write_tomogram(tmp_path / "last.mrc", data))
    with pytest.raises(DeepETPickerError, match=r"first at x=7, y=6, z=19"):
        check_finite(tomo, chunk=16)


def test_find_tomograms_sorts_and_filters(tmp_path):
    for name in ["b.rec", "a.mrc", "c.map", "notes.txt", ".hidden.mrc"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in find_tomograms(tmp_path)] == ["a.mrc", "b.rec", "c.map"]
    assert find_tomograms(tmp_path / "a.mrc") == [tmp_path / "a.mrc"]
    with pytest.raises(DeepETPickerError, match="Tomogram folder not found"):
        find_tomograms(tmp_path / "missing")

