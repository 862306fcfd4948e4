"""The preprocessing job: layout, validation before writing, re-runs, cancellation."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import deepetpicker.normalize as normalize_module
from deepetpicker.config import PreprocessConfig, load_preprocess_config
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.dataset import DatasetTomogram, list_dataset
from deepetpicker.io.outputs import MANIFEST_LOCK, OutputGuard
from deepetpicker.io.picks import read_picks
from deepetpicker.io.tomogram import load_tomogram, write_tomogram
from deepetpicker.preprocess.job import LEGACY_MANIFEST, MANIFEST, preprocess, read_num_name
from deepetpicker.preprocess.labels import ball_mask, weak_label_mask
from deepetpicker.progress import Cancelled, CancelToken

SHAPE = (16, 24, 28)  # z, y, x
PICKS_A = "1\t6\t6\t5\n2\t20\t15\t9\n1\t12\t18\t12\n"
PICKS_B = "x y z\n14 12 8\n"                    # class 1 for all, header line


@pytest.fixture(autouse=True)
def small_slabs(monkeypatch):
    """Slabs of 3 z-slices, so a 16-slice tomogram is normalised in 6 chunks."""
    monkeypatch.setattr(normalize_module, "_SLAB_VOXELS", 3 * SHAPE[1] * SHAPE[2])


def make_dataset(root, seed=0):
    raw = root / "raw"
    raw.mkdir()
    rng = np.random.default_rng(seed)
    for name in ("a.mrc", "b.mrc", "c.rec"):
        write_tomogram(raw / name, rng.normal(10.0, 3.0, SHAPE).astype(np.float32), 10.0)
    (raw / "a.coords").write_text(PICKS_A)
    (raw / "b.txt").write_text(PICKS_B)
    return PreprocessConfig(dset_name="toy", base_path=str(root / "out"),
                            coord_path=str(raw), tomo_path=str(raw), num_cls=2,
                            label_diameter=5, ocp_diameter=[5, 7])


def all_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_full_run_writes_the_original_layout(tmp_path):
    cfg = make_dataset(tmp_path)
    events = []
    result = preprocess(cfg, progress=events.append)
    out = tmp_path / "out"
    assert all_files(out) == [
        MANIFEST, MANIFEST_LOCK, "configs/toy.py", "coords/a.coords", "coords/b.coords",
        "coords/num_name.csv", "data_ocp/a.mrc", "data_ocp/b.mrc", "data_std/a.mrc",
        "data_std/b.mrc", "data_std/c.mrc", "gaussian5/a.mrc", "gaussian5/b.mrc"]
    assert result.tomograms == ["a", "b", "c"]
    assert result.labelled == ["a", "b"] and result.counts == {"a": 3, "b": 1}
    assert result.skipped == [] and len(result.written) == 11

    assert (out / "coords/num_name.csv").read_text() == "3\ta\t0\n1\tb\t1\n"
    assert read_num_name(out / "coords/num_name.csv") == [(3, "a", 0), (1, "b", 1)]
    copy_b = read_picks(out / "coords/b.coords")
    assert copy_b.classes.tolist() == [1] and copy_b.xyz.tolist() == [[14, 12, 8]]

    std = load_tomogram(out / "data_std/c.mrc", mmap=False)
    assert abs(std.data.mean()) < 1e-3 and abs(std.data.std() - 1) < 1e-3
    assert std.voxel_size == pytest.approx(10.0)

    labels = load_tomogram(out / "gaussian5/a.mrc", mmap=False).data
    assert labels.shape == SHAPE
    assert (labels[5, 6, 6], labels[9, 15, 20], labels[12, 18, 12]) == (1, 2, 1)
    assert np.count_nonzero(labels == 2) == weak_label_mask(5, "gaussian").sum()
    occ = load_tomogram(out / "data_ocp/a.mrc", mmap=False).data
    assert (occ[5, 6, 6], occ[9, 15, 20], occ[12, 18, 12]) == (1, 2, 3)
    assert np.count_nonzero(occ == 2) == ball_mask(7).sum()     # class 2: ocp diameter 7

    saved = load_preprocess_config(out / "configs/toy.py")
    assert (saved.num_cls, saved.label_diameter, saved.ocp_diameter) == (2, 5, [5, 7])

    per_tomo = [(e.item, e.message) for e in events if e.stage == "preprocess" and e.item]
    assert ("c", "c: normalising") in per_tomo
    assert ("a", "a: painting weak labels") in per_tomo
    assert not any(item == "c" and "labels" in msg for item, msg in per_tomo)
    chunks = [e.done for e in events if e.stage == "normalise" and e.item == "a"]
    assert chunks == [1, 2, 3, 4, 5, 6]


def test_rerun_skips_outputs_that_are_up_to_date(tmp_path):
    cfg = make_dataset(tmp_path)
    first = preprocess(cfg)
    stamps = {p: p.stat().st_mtime_ns for p in first.written}
    again = preprocess(cfg)
    assert again.written == []
    assert sorted(again.skipped) == sorted(first.written)
    assert {p: p.stat().st_mtime_ns for p in first.written} == stamps


def test_rerun_rewrites_stale_outputs(tmp_path):
    cfg = make_dataset(tmp_path)
    preprocess(cfg)
    out = tmp_path / "out"

    cfg.ocp_diameter = [5, 9]                                    # a changed setting
    result = preprocess(cfg)
    assert sorted(p.relative_to(out).as_posix() for p in result.written) == [
        "configs/toy.py", "data_ocp/a.mrc", "data_ocp/b.mrc"]
    occ = load_tomogram(out / "data_ocp/a.mrc", mmap=False).data
    assert np.count_nonzero(occ == 2) == ball_mask(9).sum()

    raw_b = tmp_path / "raw/b.txt"                               # a changed input
    raw_b.write_text("x y z\n10 10 10\n3 3 3\n")
    (out / "data_std/a.mrc").unlink()                            # a deleted output
    result = preprocess(cfg)
    assert sorted(p.relative_to(out).as_posix() for p in result.written) == [
        "coords/b.coords", "coords/num_name.csv", "data_ocp/b.mrc", "data_std/a.mrc",
        "gaussian5/b.mrc"]
    assert read_num_name(out / "coords/num_name.csv")[1] == (2, "b", 1)

    old = (out / "gaussian5/a.mrc").stat().st_mtime_ns - 10_000_000_000
    os.utime(out / "gaussian5/a.mrc", ns=(old, old))             # older than its inputs
    result = preprocess(cfg)
    assert [p.relative_to(out).as_posix() for p in result.written] == ["gaussian5/a.mrc"]


def test_cancel_between_chunks_leaves_complete_files_only(tmp_path):
    cfg = make_dataset(tmp_path)
    token = CancelToken()

    def progress(event):
        if event.stage == "normalise" and event.item == "b" and event.done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        preprocess(cfg, progress=progress, cancel=token)
    out = tmp_path / "out"
    assert all_files(out) == [MANIFEST, MANIFEST_LOCK, "coords/a.coords", "data_ocp/a.mrc",
                              "data_std/a.mrc", "gaussian5/a.mrc"]
    result = preprocess(cfg)
    assert sorted(p.relative_to(out).as_posix() for p in result.skipped) == [
        "coords/a.coords", "data_ocp/a.mrc", "data_std/a.mrc", "gaussian5/a.mrc"]
    assert load_tomogram(out / "data_std/b.mrc").shape == SHAPE


def break_extra_coords(raw, cfg):
    (raw / "zzz.coords").write_text("1 2 3 4\n")


def break_class(raw, cfg):
    (raw / "a.coords").write_text("1\t6\t6\t5\n3\t20\t15\t9\n")


def break_outside(raw, cfg):
    (raw / "a.coords").write_text("1\t6\t6\t5\n2\t100\t15\t9\n")


def break_unreadable(raw, cfg):
    (raw / "b.mrc").write_bytes(b"not a tomogram" * 10)


def break_nan(raw, cfg):
    data = np.ones(SHAPE, np.float32)
    data[7, 3, 4] = np.nan
    write_tomogram(raw / "c.rec", data)


def break_constant(raw, cfg):
    write_tomogram(raw / "c.rec", np.full(SHAPE, 4.0, np.float32))


def break_diameter(raw, cfg):
    cfg.label_diameter = 2


def break_duplicate(raw, cfg):
    write_tomogram(raw / "a.rec", np.ones(SHAPE, np.float32))


@pytest.mark.parametrize("breaker,words", [
    (break_extra_coords, ["zzz.coords", "no tomogram named 'zzz'"]),
    (break_class, ["a.coords, line 2", "class 3", "2 class(es)"]),
    (break_outside, ["a.coords, line 2", "x=100", "outside the tomogram"]),
    (break_unreadable, ["b.mrc", "not an MRC"]),
    (break_nan, ["c.rec", "NaN or Inf", "x=4, y=3, z=7"]),
    (break_constant, ["c.rec", "constant", "every voxel is 4"]),
    (break_diameter, ["label_diameter", "2", "at least 3"]),
    (break_duplicate, ["a.mrc", "a.rec", "keep one"]),
])
def test_bad_input_is_reported_before_anything_is_written(tmp_path, breaker, words):
    cfg = make_dataset(tmp_path)
    breaker(tmp_path / "raw", cfg)
    with pytest.raises(DeepETPickerError) as err:
        preprocess(cfg)
    for word in words:
        assert word in str(err.value)
    assert not (tmp_path / "out").exists()


def test_all_problems_in_one_error(tmp_path):
    cfg = make_dataset(tmp_path)
    break_extra_coords(tmp_path / "raw", cfg)
    break_class(tmp_path / "raw", cfg)
    with pytest.raises(DeepETPickerError, match=r"2 problems") as err:
        preprocess(cfg)
    assert "zzz.coords" in str(err.value) and "class 3" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_num_name_of_the_original_program_is_read(tmp_path):
    path = tmp_path / "num_name.csv"
    path.write_text("12.0\ttomo_a\t0\n7.0\ttomo_b\t1\n")
    assert read_num_name(path) == [(12, "tomo_a", 0), (7, "tomo_b", 1)]
    path.write_text("12.0 tomo_a\n")
    with pytest.raises(DeepETPickerError, match="line 1"):
        read_num_name(path)


def test_preprocessing_never_replaces_files_it_did_not_write(tmp_path):
    cfg = make_dataset(tmp_path)
    out = tmp_path / "out"
    (out / "data_std").mkdir(parents=True)
    theirs = out / "data_std" / "b.mrc"
    theirs.write_bytes(b"another program's normalised tomogram")
    events = []
    with pytest.raises(DeepETPickerError, match=r"data_std/b.mrc.*did not write.*another "
                                                r"base_path"):
        preprocess(cfg, progress=events.append)
    assert theirs.read_bytes() == b"another program's normalised tomogram"
    assert all_files(out) == ["data_std/b.mrc"]
    assert not [e for e in events if e.stage in ("normalise", "labels")]


def test_the_config_being_run_is_not_rewritten_and_base_path_must_be_a_folder(tmp_path):
    from deepetpicker.config import save_config

    cfg = make_dataset(tmp_path)
    path = tmp_path / "out" / "configs" / "toy.py"
    save_config(cfg, path)
    text = "# my notes on this dataset\n" + path.read_text()
    path.write_text(text)                              # hand-edited, read back as the input
    result = preprocess(load_preprocess_config(path))
    assert path.read_text() == text and path in result.skipped
    # a base_path that is a file
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    (tmp_path / "second").mkdir()
    cfg = make_dataset(tmp_path / "second")
    cfg.base_path = str(blocker)
    with pytest.raises(DeepETPickerError, match=r"base_path folder .*blocker is a file"):
        preprocess(cfg)


def test_an_empty_coordinate_file_is_not_counted_as_picks(tmp_path):
    cfg = make_dataset(tmp_path)
    (tmp_path / "raw" / "b.txt").write_text("")
    events = []
    result = preprocess(cfg, progress=events.append)
    assert result.counts == {"a": 3, "b": 0}
    assert "3 tomograms normalised, 1 with picks, 1 with an empty coordinate file" in \
        result.summary()
    assert any("1 with picks, 1 with an empty" in (e.message or "") for e in events)


def test_the_dataset_listing_gives_ids_stems_and_picks_per_class(tmp_path):
    cfg = make_dataset(tmp_path)
    with pytest.raises(DeepETPickerError, match="num_name.csv not found"):
        list_dataset(cfg.coords_dir, cfg.coord_format, cfg.num_cls)
    preprocess(cfg)
    assert list_dataset(cfg.coords_dir, cfg.coord_format, cfg.num_cls) == [
        DatasetTomogram(0, "a", {1: 2, 2: 1}), DatasetTomogram(1, "b", {1: 1, 2: 0})]
    # without the coordinate copies only a one-class dataset knows its counts (the list's)
    (tmp_path / "out" / "coords" / "a.coords").unlink()
    assert list_dataset(cfg.coords_dir, cfg.coord_format, 2)[0] == DatasetTomogram(0, "a", {})
    assert list_dataset(cfg.coords_dir, cfg.coord_format, 1)[0] == DatasetTomogram(0, "a",
                                                                                   {1: 3})


def _legacy_manifest(cfg):
    """What an earlier version kept in ``.preprocess_manifest.json`` for the toy dataset:
    each output -> the settings and input files (size, time) that made it."""
    raw, out = cfg.tomo_path, cfg.base_path

    def entry(settings, *inputs):
        stamps = {}
        for name in inputs:
            path = (Path(raw) / name).resolve()
            stamps[str(path)] = [path.stat().st_size, path.stat().st_mtime_ns]
        return {"settings": settings, "inputs": stamps}

    entries = {}
    for stem, tomo, coords in (("a", "a.mrc", "a.coords"), ("b", "b.mrc", "b.txt"),
                               ("c", "c.rec", None)):
        entries[f"data_std/{stem}.mrc"] = entry(
            {"step": "normalise", "norm_type": cfg.norm_type}, tomo)
        if coords is None:
            continue
        entries[f"coords/{stem}.coords"] = entry({"step": "coords", "num_cls": cfg.num_cls},
                                                 coords)
        entries[f"gaussian5/{stem}.mrc"] = entry(
            {"step": "labels", "label_type": cfg.label_type,
             "label_diameter": cfg.label_diameter}, tomo, coords)
        entries[f"data_ocp/{stem}.mrc"] = entry(
            {"step": "occupancy", "ocp_type": cfg.ocp_type,
             "ocp_diameter": list(cfg.ocp_diameter)}, tomo, coords)
    for name in ("coords/num_name.csv", "configs/toy.py"):
        entries[name] = {"settings": {"step": Path(name).name}, "inputs": {}}
    Path(out, LEGACY_MANIFEST).write_text(json.dumps(entries, indent=1, sort_keys=True))


def test_a_dataset_preprocessed_by_an_earlier_version_is_taken_over(tmp_path):
    cfg = make_dataset(tmp_path)
    first = preprocess(cfg)
    out = tmp_path / "out"
    # the dataset as an earlier version left it: its own manifest, none of the general one
    (out / MANIFEST).unlink()
    _legacy_manifest(cfg)
    stamps = {p: p.stat().st_mtime_ns for p in first.written}
    again = preprocess(cfg)
    assert again.written == [] and sorted(again.skipped) == sorted(first.written)
    assert {p: p.stat().st_mtime_ns for p in first.written} == stamps
    assert not (out / LEGACY_MANIFEST).exists()
    guard = OutputGuard(out)
    assert all(guard.written_by_us(p) for p in first.written)
    # after the take-over a changed setting still redoes just what it changes
    cfg.ocp_diameter = [5, 9]
    result = preprocess(cfg)
    assert sorted(p.relative_to(out).as_posix() for p in result.written) == [
        "configs/toy.py", "data_ocp/a.mrc", "data_ocp/b.mrc"]


def test_outputs_an_earlier_version_did_not_list_are_still_refused(tmp_path):
    cfg = make_dataset(tmp_path)
    preprocess(cfg)
    out = tmp_path / "out"
    (out / MANIFEST).unlink()
    _legacy_manifest(cfg)
    legacy = json.loads((out / LEGACY_MANIFEST).read_text())
    del legacy["data_std/c.mrc"]                       # a file it did not write
    (out / LEGACY_MANIFEST).write_text(json.dumps(legacy))
    before = (out / "data_std/c.mrc").read_bytes()
    with pytest.raises(DeepETPickerError, match=r"data_std/c.mrc.*did not write"):
        preprocess(cfg)
    assert (out / "data_std/c.mrc").read_bytes() == before


def test_label_diameters_paint_each_class_and_changing_them_redoes_the_labels(tmp_path):
    one = make_dataset(tmp_path)
    preprocess(one)
    cfg = PreprocessConfig(**{**{k: getattr(one, k) for k in (
        "dset_name", "base_path", "coord_path", "tomo_path", "num_cls", "ocp_diameter")},
        "label_diameter": 5, "label_diameters": [5, 7]})
    out = tmp_path / "out"
    result = preprocess(cfg)
    assert result.written == [out / "gaussian5-7/a.mrc", out / "gaussian5-7/b.mrc",
                              out / "configs/toy.py"]
    labels = load_tomogram(out / "gaussian5-7/a.mrc", mmap=False).data
    assert np.count_nonzero(labels == 2) == weak_label_mask(7, "gaussian").sum() == 287
    assert np.count_nonzero(labels == 1) == 2 * weak_label_mask(5, "gaussian").sum()
    old = load_tomogram(out / "gaussian5/a.mrc", mmap=False).data    # kept, untouched
    assert np.count_nonzero(old == 2) == weak_label_mask(5, "gaussian").sum()
    saved = load_preprocess_config(out / "configs/toy.py")
    assert (saved.label_diameter, saved.label_diameters) == (5, [5, 7])

    again = preprocess(cfg)
    assert out / "gaussian5-7/a.mrc" in again.skipped and not again.written
    # the per-class diameters paint the labels, not label_diameter: changing it alone
    # keeps them; changing a per-class diameter paints them again
    cfg.label_diameter = 3
    assert out / "gaussian5-7/a.mrc" in preprocess(cfg).skipped
    cfg.label_diameters = [5, 9]
    redone = preprocess(cfg)
    assert out / "gaussian5-9/a.mrc" in redone.written
    labels = load_tomogram(out / "gaussian5-9/a.mrc", mmap=False).data
    assert np.count_nonzero(labels == 2) == weak_label_mask(9, "gaussian").sum() == 625
