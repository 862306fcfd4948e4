"""Tomograms as OME-Zarr (written the way copick writes them) and plain Zarr arrays: reading,
voxel sizes per scale level, clear errors, and preprocessing and prediction giving the same
results as on the same data stored as MRC."""

import json

import numpy as np
import pytest
import zarr
from ome_zarr.writer import write_multiscale

import deepetpicker.normalize as normalize_module
from deepetpicker.cli import main
from deepetpicker.config import PreprocessConfig
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.outputs import file_stamp
from deepetpicker.io.picks import read_picks
from deepetpicker.io.tomogram import find_tomograms, load_tomogram, write_tomogram
from deepetpicker.io.zarr_tomogram import ChunkCache
from deepetpicker.predict.job import predict
from deepetpicker.preprocess.job import preprocess

from train_fixtures import tiny_picker

SHAPE = (16, 24, 28)  # z, y, x


def write_ome_zarr(path, data, voxel_size, levels=2, chunks=(8, 8, 8), unit="angstrom"):
    """An OME-Zarr tomogram as copick writes one: a group with multiscales metadata, levels
    "0", "1", ... binned by 2, axes z, y, x with a scale per level."""
    pyramid = [data]
    for _ in range(levels - 1):
        pyramid.append(pyramid[-1][::2, ::2, ::2])
    group = zarr.group(store=zarr.DirectoryStore(str(path)), overwrite=True)
    axes = [{"name": n, "type": "space", "unit": unit} for n in "zyx"]
    transforms = [[{"type": "scale", "scale": [voxel_size * 2 ** k] * 3}]
                  for k in range(levels)]
    write_multiscale(pyramid, group=group, axes=axes, coordinate_transformations=transforms,
                     storage_options=dict(chunks=chunks, overwrite=True), compute=True)
    return path


def volume(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).normal(10.0, 3.0, shape).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def test_ome_zarr_levels_read_like_an_mrc_with_their_voxel_size(tmp_path):
    data = volume()
    path = write_ome_zarr(tmp_path / "tomo.zarr", data, 7.5)
    tomo = load_tomogram(path)
    assert tomo.shape == SHAPE and tomo.voxel_size == pytest.approx(7.5)
    assert tomo.name == "tomo" and tomo.path == path
    assert not isinstance(tomo.data, np.ndarray)          # read lazily, chunk by chunk
    np.testing.assert_array_equal(tomo.data[3:9], data[3:9])
    np.testing.assert_array_equal(tomo.data[:, 5, :], data[:, 5, :])
    assert float(tomo.data[4, 7, 9]) == data[4, 7, 9]
    whole = load_tomogram(path, mmap=False)
    assert isinstance(whole.data, np.ndarray)
    np.testing.assert_array_equal(whole.data, data)
    for level in (1, "1"):
        binned = load_tomogram(path, level=level, mmap=False)
        assert binned.shape == (8, 12, 14) and binned.voxel_size == pytest.approx(15.0)
        np.testing.assert_array_equal(binned.data, data[::2, ::2, ::2])


class CountingArray:
    """A zarr array that counts the chunks read through it."""

    def __init__(self, array):
        self.array, self.reads = array, 0
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks

    def __getitem__(self, key):
        self.reads += 1
        return self.array[key]


def test_chunk_cache_reads_like_numpy_and_decodes_each_chunk_about_once(tmp_path):
    data = volume(5, shape=(20, 30, 40))
    array = zarr.array(data, chunks=(8, 16, 16), store=zarr.DirectoryStore(str(tmp_path / "c")))
    cached = ChunkCache(array)
    keys = [np.s_[...], np.s_[3], np.s_[-1], np.s_[2:17], np.s_[:, 5], np.s_[:, :, 39],
            np.s_[1:19:3, ::7, 5:33:4], np.s_[4, 9, 11], np.s_[7:7], np.s_[..., 2:5],
            np.s_[0, 3:28, 1:2]]
    for key in keys:
        np.testing.assert_array_equal(cached[key], data[key])
    np.testing.assert_array_equal(np.asarray(cached), data)
    np.testing.assert_array_equal(cached.vindex[[1, 2], [3, 4], [5, 6]], data[[1, 2], [3, 4],
                                                                               [5, 6]])
    with pytest.raises(IndexError):
        cached[20]
    # z-slabs thinner than a chunk, then overlapping tiles: 3 x 2 x 3 = 18 chunks in all
    counting = CountingArray(array)
    cached = ChunkCache(counting)
    for z in range(0, 20, 3):
        np.testing.assert_array_equal(cached[z:z + 3], data[z:z + 3])
    assert counting.reads == 18
    tiles = [np.s_[z:z + 9, y:y + 12, x:x + 14]
             for z, y, x in np.ndindex(3, 3, 3) for z, y, x in [(z * 6, y * 10, x * 13)]]
    for cache_bytes, most in ((None, 18), (4 * 8 * 16 * 16 * 4, None)):
        counting.reads = 0
        cached = ChunkCache(counting, cache_bytes=cache_bytes)
        for tile in tiles:
            np.testing.assert_array_equal(cached[tile], data[tile])
        if most is not None:                    # two rows of chunks by default: once each
            assert counting.reads == most
        else:                                   # a small cache stays small
            assert cached._held <= cache_bytes and counting.reads > 18


def test_axis_units_are_converted_to_angstrom(tmp_path):
    path = write_ome_zarr(tmp_path / "nm.zarr", volume(), 0.75, levels=1, unit="nanometer")
    assert load_tomogram(path).voxel_size == pytest.approx(7.5)


def test_a_plain_zarr_array_is_a_tomogram_without_voxel_size(tmp_path):
    data = volume(1)
    zarr.save_array(str(tmp_path / "plain.zarr"), data, chunks=(4, 8, 8))
    tomo = load_tomogram(tmp_path / "plain.zarr")
    assert tomo.shape == SHAPE and tomo.voxel_size is None
    np.testing.assert_array_equal(tomo.data[...], data)
    with pytest.raises(DeepETPickerError, match="single Zarr array with no scale levels, so "
                                                "level 1 does not exist"):
        load_tomogram(tmp_path / "plain.zarr", level=1)


def test_find_tomograms_lists_zarr_folders_beside_mrc_files(tmp_path):
    write_tomogram(tmp_path / "a.mrc", volume())
    write_ome_zarr(tmp_path / "b.zarr", volume(), 10.0)
    zarr.save_array(str(tmp_path / "c.zarr"), volume())
    (tmp_path / "notes").mkdir()
    (tmp_path / "d.zarr.txt").write_text("not a tomogram")
    assert [p.name for p in find_tomograms(tmp_path)] == ["a.mrc", "b.zarr", "c.zarr"]
    assert find_tomograms(tmp_path / "b.zarr") == [tmp_path / "b.zarr"]


def test_a_level_that_does_not_exist_lists_those_that_do(tmp_path):
    path = write_ome_zarr(tmp_path / "tomo.zarr", volume(), 10.0, levels=3)
    for level in (3, "7", "s1"):
        with pytest.raises(DeepETPickerError, match=r"tomo.zarr has no scale level .*; its "
                                                    r"levels are 0, 1, 2"):
            load_tomogram(path, level=level)


def test_a_group_without_multiscales_metadata_is_refused(tmp_path):
    group = zarr.group(store=zarr.DirectoryStore(str(tmp_path / "g.zarr")))
    group.create_dataset("volume", data=volume())
    with pytest.raises(DeepETPickerError, match=r"g.zarr is a Zarr group without OME-Zarr "
                                                r"'multiscales' metadata \(it holds the arrays "
                                                r"volume\)"):
        load_tomogram(tmp_path / "g.zarr")
    # the array inside is a plain 3-D array and can be given itself
    assert load_tomogram(tmp_path / "g.zarr" / "volume").shape == SHAPE


def test_data_that_is_not_3d_is_refused(tmp_path):
    zarr.save_array(str(tmp_path / "image.zarr"), np.zeros((6, 7), np.float32))
    with pytest.raises(DeepETPickerError, match=r"image.zarr holds an array of shape \(6, 7\), "
                                                r"not a 3-D tomogram"):
        load_tomogram(tmp_path / "image.zarr")
    five_d = np.zeros((1, 1) + SHAPE, np.float32)
    group = zarr.group(store=zarr.DirectoryStore(str(tmp_path / "tczyx.zarr")))
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "angstrom"} for n in "zyx"]
    write_multiscale([five_d], group=group, axes=axes,
                     coordinate_transformations=[[{"type": "scale",
                                                   "scale": [1, 1, 10.0, 10.0, 10.0]}]])
    with pytest.raises(DeepETPickerError, match=r"tczyx.zarr has the axes \['t', 'c', 'z', 'y', "
                                                r"'x'\]; a tomogram needs the three axes z, y, x"):
        load_tomogram(tmp_path / "tczyx.zarr")


def test_a_folder_named_zarr_that_is_not_zarr(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(DeepETPickerError, match=r"empty.zarr is not a Zarr store: it has no "
                                                r"\.zgroup or \.zarray"):
        load_tomogram(tmp_path / "empty.zarr")


def test_a_zarr_folder_stamp_follows_its_chunks(tmp_path):
    path = write_ome_zarr(tmp_path / "tomo.zarr", volume(), 10.0)
    before = file_stamp(path)
    chunk = sorted((path / "0").glob("0.0.*"))[0]
    chunk.write_bytes(chunk.read_bytes() + b"x")
    after = file_stamp(path)
    assert after[0] == before[0] and after[1] == before[1] + 1 and after[2] >= before[2]


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------
def _dataset(root, data, as_zarr):
    raw = root / "raw"
    raw.mkdir(parents=True)
    if as_zarr:
        write_ome_zarr(raw / "a.zarr", data, 10.0, chunks=(5, 8, 8))
    else:
        write_tomogram(raw / "a.mrc", data, 10.0)
    (raw / "a.coords").write_text("1\t6\t6\t5\n1\t20\t15\t9\n")
    return _config(root)


def _config(root):
    return PreprocessConfig(dset_name="toy", base_path=str(root / "out"),
                            coord_path=str(root / "raw"), tomo_path=str(root / "raw"),
                            num_cls=1, label_diameter=5, ocp_diameter=[5])


def test_preprocess_a_zarr_tomogram_like_the_same_mrc(tmp_path, monkeypatch):
    monkeypatch.setattr(normalize_module, "_SLAB_VOXELS", 3 * SHAPE[1] * SHAPE[2])
    data = volume(2)
    outputs = {}
    for kind in ("mrc", "zarr"):
        cfg = _dataset(tmp_path / kind, data, kind == "zarr")
        result = preprocess(cfg)
        assert result.tomograms == ["a"] and result.labelled == ["a"]
        outputs[kind] = {sub: load_tomogram(tmp_path / kind / "out" / sub / "a.mrc",
                                            mmap=False)
                         for sub in ("data_std", "gaussian5", "data_ocp")}
    for sub in ("data_std", "gaussian5", "data_ocp"):
        mrc, zr = outputs["mrc"][sub], outputs["zarr"][sub]
        assert zr.shape == SHAPE and zr.voxel_size == pytest.approx(10.0)
        np.testing.assert_array_equal(zr.data, mrc.data)
    normalised = outputs["zarr"]["data_std"].data.astype(np.float64)
    assert abs(normalised.mean()) < 1e-5 and normalised.std() == pytest.approx(1.0, abs=1e-4)
    # a second run finds everything up to date; a changed chunk makes it normalise again
    again = preprocess(_config(tmp_path / "zarr"))
    assert again.written == []
    assert tmp_path / "zarr/out/data_std/a.mrc" in again.skipped
    store = zarr.open(str(tmp_path / "zarr/raw/a.zarr"), mode="r+")
    store["0"][0, 0, 0] = 1000.0
    third = preprocess(_config(tmp_path / "zarr"))
    assert tmp_path / "zarr/out/data_std/a.mrc" in third.written


def test_preprocess_at_another_level_uses_its_shape_and_voxel_size(tmp_path):
    data = volume(3)
    cfg = _dataset(tmp_path, data, as_zarr=True)
    (tmp_path / "raw/a.coords").write_text("1\t6\t6\t5\n")
    preprocess(cfg, zarr_level=1)
    out = load_tomogram(tmp_path / "out/data_std/a.mrc", mmap=False)
    assert out.shape == (8, 12, 14) and out.voxel_size == pytest.approx(20.0)
    binned = data[::2, ::2, ::2].astype(np.float64)
    expected = (binned - binned.mean()) / binned.std()
    np.testing.assert_allclose(out.data, expected, atol=1e-5)
    with pytest.raises(DeepETPickerError, match="a.zarr has no scale level 5; its levels are "
                                                "0, 1"):
        preprocess(cfg, zarr_level=5)


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny trained network and a held-out tomogram as MRC and as OME-Zarr (chunks that do
    not match the tiles)."""
    tmp = tmp_path_factory.mktemp("zarr_predict")
    run = tiny_picker(tmp)
    (tmp / "mrc").mkdir()
    (tmp / "zarr").mkdir()
    run["mrc"] = write_tomogram(tmp / "mrc" / "held.mrc", run["volume"], 10.0)
    run["zarr"] = write_ome_zarr(tmp / "zarr" / "held.zarr", run["volume"], 10.0,
                                 chunks=(7, 9, 11))
    return run


def test_predict_on_a_zarr_tomogram_gives_the_picks_of_the_mrc(tiny_run, tmp_path):
    results = {}
    for kind in ("mrc", "zarr"):
        result = predict(tiny_run["config"], tiny_run["weights"],
                         tomograms=[tiny_run[kind].parent], out=tmp_path / kind)
        assert not result.failed and [p.name for p in result.outputs] == ["held.coords"]
        results[kind] = read_picks(result.outputs[0])
    mrc, zr = results["mrc"], results["zarr"]
    assert len(mrc) >= 4
    np.testing.assert_array_equal(zr.xyz, mrc.xyz)
    np.testing.assert_array_equal(zr.classes, mrc.classes)
    np.testing.assert_allclose(zr.scores, mrc.scores, rtol=1e-6)
    # the picks are the particles
    dist = np.linalg.norm(zr.zyx[:, None] - tiny_run["centres"][None], axis=2).min(axis=1)
    assert (dist <= 2).mean() >= 0.75
    sidecar = json.loads((tmp_path / "zarr" / "held.coords.json").read_text())
    assert sidecar["voxel_size"] == pytest.approx(10.0) and sidecar["shape"] == [24, 40, 40]


def test_predict_command_reads_the_level_named(tiny_run, tmp_path, capsys):
    args = ["predict", "--weights", str(tiny_run["weights"]),
            "--tomograms", str(tiny_run["zarr"]), "--out", str(tmp_path)]
    assert main(args + ["--zarr-level", "1"]) == 0
    sidecar = json.loads((tmp_path / "held.coords.json").read_text())
    assert sidecar["shape"] == [12, 20, 20] and sidecar["voxel_size"] == pytest.approx(20.0)
    assert sidecar["zarr_level"] == "1"
    # level 0 is another input: picked again, not skipped as done
    assert main(args + ["--overwrite"]) == 0
    sidecar = json.loads((tmp_path / "held.coords.json").read_text())
    assert sidecar["shape"] == [24, 40, 40] and "zarr_level" not in sidecar
    capsys.readouterr()
    assert main(args + ["--zarr-level", "4", "--overwrite"]) == 2
    out = capsys.readouterr()
    assert "held.zarr has no scale level '4'; its levels are 0, 1" in out.out + out.err


# --------------------------------------------------------------------------------------------
# The viewer
# --------------------------------------------------------------------------------------------
def test_the_viewer_shows_a_zarr_tomogram_like_the_mrc(qtbot, tmp_path):
    from PyQt5.QtCore import QSettings

    from gui.tabs.viewer_tab import ViewerTab

    data = volume(4)
    paths = {"mrc": write_tomogram(tmp_path / "v.mrc", data, 10.0),
             "zarr": write_ome_zarr(tmp_path / "v.zarr", data, 10.0, chunks=(5, 7, 9))}
    shown = {}
    for kind, path in paths.items():
        tab = ViewerTab(QSettings(str(tmp_path / f"{kind}.ini"), QSettings.IniFormat))
        qtbot.addWidget(tab)
        assert tab.open_tomogram(path)
        assert "28 x 24 x 16 (x, y, z), 10 A/voxel" in tab.file_label.text()
        tab.views.refresh_images()
        shown[kind] = {name: view.image.image.copy() for name, view in tab.views.views.items()}
    for name, image in shown["zarr"].items():
        assert image.size > 0
        np.testing.assert_array_equal(image, shown["mrc"][name])


def test_the_viewer_restores_unsaved_picks_of_a_zarr_tomogram(qtbot, tmp_path, monkeypatch):
    from PyQt5.QtCore import QSettings

    from gui import dialogs
    from gui.picks_model import autosave_path
    from gui.tabs.viewer_tab import ViewerTab

    path = write_ome_zarr(tmp_path / "v.zarr", volume(4), 10.0)
    settings = QSettings(str(tmp_path / "viewer.ini"), QSettings.IniFormat)
    tab = ViewerTab(settings)
    qtbot.addWidget(tab)
    assert tab.open_tomogram(path)
    tab.model.add(1, 5.0, 6.0, 7.0)
    tab.model.write_autosave(tab.document.default_picks_path)
    assert autosave_path(tmp_path / "v.coords").is_file()
    tab.model.undo_stack.setClean()
    asked = []
    monkeypatch.setattr(dialogs, "ask_yes_no", lambda *a, **k: asked.append(a[2]) or True)
    again = ViewerTab(settings)
    qtbot.addWidget(again)
    assert again.restore_last_session()
    assert again.tomogram.path == path and "v.zarr has unsaved picks" in asked[0]
    assert len(again.model) == 1


def test_the_open_dialog_takes_a_zarr_folder_as_one_tomogram(qtbot, tmp_path, monkeypatch):
    """The viewer's "Open tomogram" dialog returns a ``.zarr`` folder (a tomogram) when it is
    opened, enters any other folder, and takes files as before."""
    from PyQt5.QtCore import QSettings, Qt
    from PyQt5.QtWidgets import QDialog

    from gui import dialogs
    from gui.tabs.viewer_tab import ViewerTab

    zarr_path = write_ome_zarr(tmp_path / "v.zarr", volume(4), 10.0)
    mrc_path = write_tomogram(tmp_path / "v.mrc", volume(4), 10.0)
    (tmp_path / "sub").mkdir()
    chosen = {}
    for name in ("v.zarr", "sub", "v.mrc"):
        dialog = dialogs.TomogramDialog(None, "Open tomogram", str(tmp_path))
        qtbot.addWidget(dialog)
        dialog.selectFile(str(tmp_path / name))
        dialog.accept()
        chosen[name] = (dialog.result() == QDialog.Accepted, dialog.chosen,
                        dialog.directory().absolutePath())
    assert chosen["v.zarr"] == (True, [str(zarr_path)], str(tmp_path))
    assert chosen["sub"] == (False, [], str(tmp_path / "sub"))      # entered, not taken
    assert chosen["v.mrc"] == (True, [str(mrc_path)], str(tmp_path))

    # the Open button goes through that dialog and opens the Zarr store it answers
    def answer(dialog):
        dialog.selectFile(str(zarr_path))
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(dialogs.TomogramDialog, "exec_", answer)
    tab = ViewerTab(QSettings(str(tmp_path / "viewer.ini"), QSettings.IniFormat))
    qtbot.addWidget(tab)
    qtbot.mouseClick(tab.open_button, Qt.LeftButton)
    assert tab.tomogram is not None and tab.tomogram.path == zarr_path
    assert "28 x 24 x 16 (x, y, z), 10 A/voxel" in tab.file_label.text()


def test_the_add_tomograms_dialog_takes_zarr_folders_and_files_together(qtbot, tmp_path,
                                                                       monkeypatch):
    """The Inference tab's "Add files..." lists several tomograms chosen at once, Zarr
    folders among them; a plain folder in the choice is entered, nothing is added."""
    from PyQt5.QtCore import Qt

    from gui import dialogs
    from gui.tabs.infer_tab import InferTab

    zarr_path = write_ome_zarr(tmp_path / "a.zarr", volume(4), 10.0)
    mrc_path = write_tomogram(tmp_path / "b.mrc", volume(4), 10.0)
    (tmp_path / "sub").mkdir()
    selection = {}

    def answer(dialog):
        dialog.setDirectory(str(tmp_path))
        dialog.selectFile(selection["names"])
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(dialogs.TomogramDialog, "exec_", answer)
    tab = InferTab()
    qtbot.addWidget(tab)
    selection["names"] = '"sub"'
    qtbot.mouseClick(tab.add_files, Qt.LeftButton)
    assert tab.tomograms() == []
    selection["names"] = '"a.zarr" "b.mrc"'
    qtbot.mouseClick(tab.add_files, Qt.LeftButton)
    assert sorted(tab.tomograms()) == sorted([str(zarr_path), str(mrc_path)])
