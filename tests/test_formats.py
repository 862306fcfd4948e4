"""Other programs' pick formats: round trips, conventions and failure cases."""

import json
import re

import numpy as np
import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io import formats as F
from deepetpicker.io.formats import relion as R
from deepetpicker.io.picks import Picks, write_picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.ops import convert as C

SHAPE = (20, 30, 40)  # z, y, x
VOXEL = 7.5
HOLDS_SCORES = {"coords", "star", "relion4", "relion5", "tbl", "copick"}


def _tables(seed=0):
    rng = np.random.default_rng(seed)
    upper = np.array([SHAPE[2], SHAPE[1], SHAPE[0]]) - 1
    a = Picks(rng.integers(1, 4, 7), rng.uniform(0, 1, (7, 3)) * upper,
              rng.uniform(0, 1, 7), "TS_01", VOXEL)
    b = Picks(np.ones(3, int), rng.uniform(0, 1, (3, 3)) * upper,
              rng.uniform(0, 1, 3), "TS_02", VOXEL)
    return [a, b]


def _read_all(files, **kwargs):
    tables = {}
    for path in files:
        if path.suffix == ".doc":
            continue
        for table in F.read_any(path, **kwargs):
            tables.setdefault(table.tomo_name, []).append(table)
    return {name: Picks.concat(group) for name, group in tables.items()}


def _sorted(table):
    order = np.lexsort(np.column_stack([table.xyz, table.classes]).T)
    return table.select(order)


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_every_format_round_trips(tmp_path, fmt):
    originals = _tables()
    files = F.write_format(originals, fmt, tmp_path, shapes=SHAPE)
    assert all(path.exists() for path in files)
    back = _read_all(files, shape=SHAPE, voxel_size=VOXEL)
    assert sorted(back) == ["TS_01", "TS_02"]
    for original in originals:
        got, want = _sorted(back[original.tomo_name]), _sorted(original)
        np.testing.assert_allclose(got.xyz, want.xyz, atol=1e-3)
        np.testing.assert_array_equal(got.classes, want.classes)
        if fmt in HOLDS_SCORES:
            np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        else:
            assert got.scores is None
        assert got.voxel_size == VOXEL
        assert got.meta["format"] == fmt


@pytest.mark.parametrize("fmt", ["box", "copick", "ndjson"])
def test_class_names_name_the_objects_and_map_back(tmp_path, fmt):
    table = Picks([1, 2, 2], [[1, 2, 3], [4, 5, 6], [7, 8, 9]], None, "TS_01", VOXEL)
    files = F.write_format(table, fmt, tmp_path, class_names=["ribosome", "proteasome"])
    assert any("proteasome" in path.name for path in files)
    back = _read_all(files, class_names=["ribosome", "proteasome"])["TS_01"]
    assert sorted(back.classes.tolist()) == [1, 2, 2]


def test_write_merges_tables_of_the_same_tomogram(tmp_path):
    one = Picks([1], [[1, 2, 3]], None, "TS_01")
    two = Picks([1], [[4, 5, 6]], None, "TS_01")
    files = F.write_format([one, two], "coords", tmp_path)
    assert [p.name for p in files] == ["TS_01.coords"]
    assert files[0].read_text() == "1\t1\t2\t3\n1\t4\t5\t6\n"


def test_unknown_output_format(tmp_path):
    with pytest.raises(DeepETPickerError, match="Unknown pick format 'pdb'.*coords"):
        F.write_format(_tables(), "pdb", tmp_path)


# --- conventions -------------------------------------------------------------------------
def test_convention_functions():
    xyz = np.array([[0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(F.to_one_based(xyz), [[1, 2, 3]])
    np.testing.assert_array_equal(F.from_one_based(F.to_one_based(xyz)), xyz)
    np.testing.assert_array_equal(F.tomogram_centre((10, 20, 30)), [15, 10, 5])
    np.testing.assert_allclose(F.to_angstrom(xyz, 2.5), [[0, 2.5, 5]])
    centred = F.to_centred_angstrom([[15, 10, 5], [16, 10, 5]], (10, 20, 30), 2.0)
    np.testing.assert_allclose(centred, [[0, 0, 0], [2, 0, 0]])
    np.testing.assert_allclose(F.from_centred_angstrom(centred, (10, 20, 30), 2.0),
                               [[15, 10, 5], [16, 10, 5]])
    assert F.class_name(2) == "class-2" and F.class_name(2, ["a", "b"]) == "b"
    assert F.class_from_name("class-3") == 3 and F.class_from_name("b", ["a", "b"]) == 2
    assert F.class_from_name("ribosome") is None and F.class_from_name("class-0") is None


def test_relion5_values_are_angstrom_from_the_centre(tmp_path):
    table = Picks([1], [[20, 15, 10]], None, "TS_01", 2.0)  # the centre of (20, 30, 40)
    path, = F.write_format(table, "relion5", tmp_path, shapes=SHAPE)
    text = path.read_text()
    assert "_rlnCenteredCoordinateXAngst" in text and "_rlnTomoName" in text
    row = [line for line in text.splitlines() if line.startswith("TS_01")][0].split()
    assert [float(v) for v in row[1:4]] == [0.0, 0.0, 0.0]


def test_dynamo_table_columns_are_one_based(tmp_path):
    table = Picks([2], [[10, 20, 30]], [0.75], "TS_09")
    tbl, doc = F.write_format(table, "tbl", tmp_path)
    columns = tbl.read_text().split()
    assert len(columns) == 35
    assert columns[0] == "1" and columns[9] == "0.75" and columns[19] == "1"
    assert columns[21] == "2" and columns[23:26] == ["11", "21", "31"]
    assert doc.read_text() == "1 TS_09.mrc\n"


def test_dynamo_shifts_are_added_and_table_map_names_tomograms(tmp_path):
    row = ["0"] * 35
    row[0], row[19], row[21] = "5", "3", "0"  # tag, tomogram index, class 0 -> 1
    row[3:6] = ["0.5", "-1", "0"]  # dx dy dz
    row[23:26] = ["11", "21", "31"]
    row[27] = "1.2+0i"  # a complex daxis value, as Dynamo sometimes writes
    (tmp_path / "t.tbl").write_text(" ".join(row) + "\n")
    (tmp_path / "t.doc").write_text("3 /data/tomos/TS_42.rec\n")
    table, = F.read_any(tmp_path / "t.tbl")
    assert table.tomo_name == "TS_42"
    np.testing.assert_allclose(table.xyz, [[10.5, 19, 30]])
    assert table.classes.tolist() == [1] and table.scores is None


def test_eman2_box_is_tab_separated_xyz(tmp_path):
    path, = F.write_format(Picks([1, 1], [[1, 2, 3], [4.5, 5, 6]], None, "TS_01"), "box",
                           tmp_path)
    assert path.name == "TS_01.box"
    assert path.read_text() == "1\t2\t3\n4.5\t5\t6\n"


def test_relion3_star_written_by_another_program(tmp_path):
    text = ("\ndata_\n\nloop_\n_rlnMicrographName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n"
            "_rlnCoordinateZ #4\nTomograms/TS_01.mrc 10.0 20.0 30.0\n"
            "Tomograms/TS_02.mrc 1.5 2.5 3.5\nTomograms/TS_01.mrc 11 21 31\n")
    (tmp_path / "p.star").write_text(text)
    assert F.detect_format(tmp_path / "p.star") == "star"
    tables = {t.tomo_name: t for t in F.read_any(tmp_path / "p.star")}
    np.testing.assert_array_equal(tables["TS_01"].xyz, [[10, 20, 30], [11, 21, 31]])
    assert tables["TS_02"].classes.tolist() == [1]


def test_copick_file_locations_and_voxel_spacing(tmp_path):
    table = Picks([1], [[10, 20, 30]], [0.5], "run_7", 10.0)
    path, = F.write_format(table, "copick", tmp_path)
    assert path.relative_to(tmp_path).as_posix() == \
        "ExperimentRuns/run_7/Picks/deepetpicker_0_class-1.json"
    data = json.loads(path.read_text())
    assert data["voxel_spacing"] == 10.0 and data["run_name"] == "run_7"
    assert data["points"][0]["location"] == {"x": 100.0, "y": 200.0, "z": 300.0}
    assert data["points"][0]["score"] == 0.5
    # the file's voxel spacing is used when none is given; a given one wins
    np.testing.assert_allclose(F.read_any(path)[0].xyz, [[10, 20, 30]])
    np.testing.assert_allclose(F.read_any(path, voxel_size=5.0)[0].xyz, [[20, 40, 60]])


def test_ndjson_lines(tmp_path):
    path, = F.write_format(Picks([1], [[1.5, 2, 3]], None, "TS_01"), "ndjson", tmp_path)
    assert path.name == "TS_01.ndjson"
    assert json.loads(path.read_text()) == {"type": "point",
                                            "location": {"x": 1.5, "y": 2.0, "z": 3.0}}
    (tmp_path / "TS_03_class-2.ndjson").write_text(
        '{"type": "orientedPoint", "location": {"x": 1, "y": 2, "z": 3}, '
        '"xyz_rotation_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}')
    table, = F.read_any(tmp_path / "TS_03_class-2.ndjson")
    assert (table.tomo_name, table.classes.tolist()) == ("TS_03", [2])


def test_detect_format(tmp_path):
    for fmt in ("relion4", "relion5"):
        path, = F.write_format(_tables(), fmt, tmp_path / fmt, shapes=SHAPE)
        assert F.detect_format(path) == fmt
    assert F.detect_format(tmp_path / "a.csv") == "coords"
    with pytest.raises(DeepETPickerError, match=r"extension '\.pdb'"):
        F.detect_format(tmp_path / "a.pdb")


# --- failure cases -----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["copick", "relion5"])
def test_angstrom_formats_need_a_voxel_size(tmp_path, fmt):
    table = Picks([1], [[1, 2, 3]], None, "TS_01", None)
    with pytest.raises(DeepETPickerError, match=f"{fmt} format stores coordinates in Angstrom"
                                                f".*'TS_01'.*--voxel-size"):
        F.write_format(table, fmt, tmp_path, shapes=SHAPE)


def test_relion5_needs_the_shape_to_write_and_to_read(tmp_path):
    with pytest.raises(DeepETPickerError, match="RELION 5.*shape of tomogram 'TS_01'.*--shape"):
        F.write_format(_tables(), "relion5", tmp_path)
    path, = F.write_format(_tables(), "relion5", tmp_path, shapes=SHAPE)
    with pytest.raises(DeepETPickerError, match="particles_relion5.star: RELION 5.*--shape"):
        F.read_any(path, voxel_size=VOXEL)
    with pytest.raises(DeepETPickerError, match="particles_relion5.star: the relion5 format"):
        F.read_any(path, shape=SHAPE)


def test_copick_without_voxel_spacing_needs_one(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"pickable_object_name": "ribosome", "user_id": "u",
                                "session_id": "1", "run_name": "TS_5",
                                "points": [{"location": {"x": 10, "y": 20, "z": 30}}]}))
    with pytest.raises(DeepETPickerError, match="copick format.*'TS_5'.*--voxel-size"):
        F.read_any(path)
    table, = F.read_any(path, voxel_size=10)
    np.testing.assert_allclose(table.xyz, [[1, 2, 3]])
    assert table.scores.tolist() == [1.0]  # copick's default score


@pytest.mark.parametrize("name, text, pattern", [
    ("bad.star", "data_particles\nloop_\n_rlnTomoName #1\n_rlnCoordinateX #2\n"
                 "_rlnCoordinateY #3\n_rlnCoordinateZ #4\nTS_1 1 2 3\nTS_1 4 abc 6\n",
     r"bad.star, block data_particles, row 2: rlnCoordinateY is 'abc'"),
    ("short.star", "data_\nloop_\n_rlnMicrographName #1\n_rlnCoordinateX #2\n"
                   "_rlnCoordinateY #3\n_rlnCoordinateZ #4\nt.mrc 1 2 3\nt.mrc 4 5\n",
     r"short.star, block data_, row 2: rlnCoordinateZ is missing"),
    ("nocoords.star", "data_\nloop_\n_rlnMicrographName #1\n_rlnAngleRot #2\nt.mrc 4\n",
     r"nocoords.star has no data block with particle coordinates.*rlnCoordinateX"),
    ("cls.star", "data_\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n"
                 "_rlnClassNumber #4\n1 2 3 0\n",
     r"cls.star, block data_, row 1: rlnClassNumber is 0"),
    ("b.box", "1\t2\t3\n1 2 3 4\n", r"b.box, line 2: 4 columns.*2-D EMAN box"),
    ("c.box", "1 2 x\n", r"c.box, line 1: box column 3 is 'x', not a number"),
    ("t.tbl", "1 1 0\n", r"t.tbl, line 1: 3 columns; a Dynamo table row has at least 26"),
    ("p.json", '{"points": [{"location": {"x": 1, "y": "a", "z": 3}}], "voxel_spacing": 1}',
     r"p.json, points\[0\]: location.y is 'a', not a number"),
    ("q.json", '{"points": [{"loc": 1}]}', r"q.json, points\[0\]: no 'location'"),
    ("r.json", '{"name": 1}', r"r.json is not a copick picks file"),
    ("s.json", '{"points": [', r"s.json, line 1: not valid JSON"),
    ("a.ndjson", '{"type": "point", "location": {"x": 1, "y": 2, "z": 3}}\n{oops\n',
     r"a.ndjson, line 2: not valid JSON"),
    ("b.ndjson", '{"type": "segmentationMask", "location": {"x": 1, "y": 2, "z": 3}}\n',
     r"b.ndjson, line 1: 'type' is 'segmentationMask'"),
])
def test_malformed_files_name_the_file_and_line_or_field(tmp_path, name, text, pattern):
    (tmp_path / name).write_text(text)
    with pytest.raises(DeepETPickerError, match=pattern):
        F.read_any(tmp_path / name, voxel_size=1.0)


def test_picks_outside_the_tomogram_are_reported_for_every_format(tmp_path):
    table = Picks([1], [[45, 2, 3]], None, "TS_01", VOXEL)  # x 45 > 39
    path, = F.write_format(table, "ndjson", tmp_path)
    with pytest.raises(DeepETPickerError, match=r"TS_01.ndjson \(tomogram 'TS_01'\), row 1"):
        F.read_any(path, shape=SHAPE)


def test_num_cls_is_checked(tmp_path):
    tbl, _ = F.write_format(Picks([1, 3], [[1, 2, 3], [4, 5, 6]], None, "TS_01"), "tbl",
                            tmp_path)
    with pytest.raises(DeepETPickerError, match=r"pick 2 of tomogram 'TS_01': class 3 but "
                                                r"the dataset has 2"):
        F.read_any(tbl, num_cls=2)


def test_missing_input(tmp_path):
    with pytest.raises(DeepETPickerError, match="Pick file not found"):
        F.read_any(tmp_path / "none.star")


# --- convert -----------------------------------------------------------------------------
def test_convert_takes_shapes_and_voxel_sizes_from_tomograms(tmp_path):
    tomo_dir = tmp_path / "tomos"
    write_tomogram(tomo_dir / "TS_01.mrc", np.zeros(SHAPE, np.float32), voxel_size=VOXEL)
    picks_dir = tmp_path / "picks"
    original = _tables()[0]
    write_picks(picks_dir / "TS_01.coords", original)
    files = C.convert([picks_dir], "relion5", tmp_path / "out", tomograms=[tomo_dir])
    assert [p.name for p in files] == ["particles_relion5.star"]
    back, = F.read_any(files[0], shape=SHAPE, voxel_size=VOXEL)
    np.testing.assert_allclose(_sorted(back).xyz, _sorted(original).xyz, atol=1e-3)


def test_convert_keeps_one_class(tmp_path):
    path = tmp_path / "TS_01.coords"
    write_picks(path, Picks([1, 2, 2], [[1, 2, 3], [4, 5, 6], [7, 8, 9]], None, "TS_01"))
    files = C.convert([path], "box", tmp_path / "out", class_id=2)
    assert [p.name for p in files] == ["TS_01_class-2.box"]
    assert files[0].read_text() == "4\t5\t6\n7\t8\t9\n"
    with pytest.raises(DeepETPickerError, match=r"No picks of class 5.*classes present are "
                                                r"\[1, 2\]"):
        C.convert([path], "box", tmp_path / "out", class_id=5)


def test_convert_with_cli_style_arguments(tmp_path):
    path = tmp_path / "TS_01.coords"
    write_picks(path, Picks([1], [[20, 15, 10]], None, "TS_01"))
    files = C.convert([str(path)], "copick", str(tmp_path / "out"), voxel_size=4.0,
                      shapes=[SHAPE])
    data = json.loads(files[0].read_text())
    assert data["voxel_spacing"] == 4.0
    assert data["points"][0]["location"] == {"x": 80.0, "y": 60.0, "z": 40.0}
    with pytest.raises(DeepETPickerError, match="Unknown output format"):
        C.convert([path], "mod", tmp_path / "out")
    with pytest.raises(DeepETPickerError, match="No pick files"):
        C.convert([tmp_path / "out" / "ExperimentRuns" / "TS_01"], "coords", tmp_path / "o2")


# --- RELION 4 binning and tilt-series pixel size -------------------------------------------
def _relion4_rows(path):
    import starfile

    blocks = starfile.read(path, always_dict=True)
    return blocks["particles"], blocks.get("optics")


def test_relion4_coordinates_are_unbinned_tilt_series_pixels(tmp_path):
    table = Picks([1, 2], [[10, 20, 5], [1.5, 2, 3]], [0.9, 0.8], "TS_01", 5.4)
    path, = F.write_format(table, "relion4", tmp_path, binning=4)
    particles, optics = _relion4_rows(path)
    np.testing.assert_allclose(particles[list(R.XYZ_PIXEL)].to_numpy(),
                               [[40, 80, 20], [6, 8, 12]])
    assert particles["rlnClassNumber"].tolist() == [1, 2]
    assert optics["rlnTomoTiltSeriesPixelSize"].tolist() == [1.35]
    assert particles["rlnOpticsGroup"].tolist() == [1, 1]
    # particles come first: RELION's importers read the first data block
    text = path.read_text()
    assert text.index("data_particles") < text.index("data_optics")
    # the optics table gives the unit back: voxel size / tilt-series pixel = 4
    back, = F.read_any(path, voxel_size=5.4)
    np.testing.assert_allclose(back.xyz, table.xyz)
    assert back.meta["binning"] == 4 and back.meta["tilt_series_pixel_size"] == 1.35
    # without a voxel size the picks stay in tilt-series pixels, and say so
    raw, = F.read_any(path)
    np.testing.assert_allclose(raw.xyz, table.xyz * 4)
    assert raw.voxel_size == 1.35


def test_relion4_binning_from_the_two_pixel_sizes(tmp_path):
    table = Picks([1], [[10, 20, 5]], None, "TS_01", 10.8)
    path, = F.write_format(table, "relion4", tmp_path, tilt_series_pixel_size=1.35)
    particles, optics = _relion4_rows(path)
    np.testing.assert_allclose(particles[list(R.XYZ_PIXEL)].to_numpy(), [[80, 160, 40]])
    back, = F.read_any(path, voxel_size=10.8)
    np.testing.assert_allclose(back.xyz, [[10, 20, 5]])
    # an explicit binning that agrees is fine; the same file read with binning 8 too
    back, = F.read_any(path, voxel_size=10.8, binning=8)
    np.testing.assert_allclose(back.xyz, [[10, 20, 5]])


def test_relion4_refuses_pixel_sizes_that_disagree(tmp_path):
    table = Picks([1], [[10, 20, 5]], None, "TS_01", 10.0)
    # 10 / 1.35 = 7.4: no whole binning, so nothing is guessed
    with pytest.raises(DeepETPickerError, match=r"'TS_01': voxel size 10 A and tilt-series "
                                                r"pixel size 1.35 A give no whole binning.*"
                                                r"--binning"):
        F.write_format(table, "relion4", tmp_path, tilt_series_pixel_size=1.35)
    # explicit binning that contradicts both pixel sizes
    with pytest.raises(DeepETPickerError, match=r"voxel size 10 A is not binning 4 x "
                                                r"tilt-series pixel size 1.35 A.*disagree"):
        F.write_format(table, "relion4", tmp_path, binning=4, tilt_series_pixel_size=1.35)
    # an explicit non-whole binning is the user's to give
    path, = F.write_format(table, "relion4", tmp_path, binning=10 / 1.35,
                           tilt_series_pixel_size=1.35)
    back, = F.read_any(path, voxel_size=10.0, binning=10 / 1.35)
    np.testing.assert_allclose(back.xyz, [[10, 20, 5]], atol=1e-4)
    # reading: the file's optics table against a tomogram of another voxel size
    path, = F.write_format(Picks([1], [[40, 80, 20]], None, "TS_01", 1.35), "relion4",
                           tmp_path / "b")
    with pytest.raises(DeepETPickerError, match=r"particles_relion4.star: tomogram 'TS_01': "
                                                r"voxel size 10 A and tilt-series pixel size "
                                                r"1.35 A give no whole binning"):
        F.read_any(path, voxel_size=10.0)
    with pytest.raises(DeepETPickerError, match=r"--tilt-series-pixel-size 1.7 A disagrees "
                                                r"with the file's rlnTomoTiltSeriesPixelSize "
                                                r"1.35 A"):
        F.read_any(path, tilt_series_pixel_size=1.7)
    with pytest.raises(DeepETPickerError, match="Binning -2 is not a positive number; give "
                                                "the tilt-series pixels per tomogram voxel"):
        F.read_any(path, binning=-2)


def test_relion4_written_by_relion_with_optics_first(tmp_path):
    # the layout relion_tomo_import_particles writes: optics, then particles
    text = ("\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n"
            "_rlnTomoTiltSeriesPixelSize #3\n1 opticsGroup1 1.35\n2 opticsGroup2 2.7\n\n"
            "data_particles\n\nloop_\n_rlnTomoName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n"
            "_rlnCoordinateZ #4\n_rlnOpticsGroup #5\n01 400 800 200 1\n02 100 200 50 2\n")
    (tmp_path / "particles.star").write_text(text)
    tables = {t.tomo_name: t for t in F.read_any(tmp_path / "particles.star",
                                                 voxel_size={"01": 13.5, "02": 27.0})}
    assert sorted(tables) == ["01", "02"]  # names stay text, "01" is not the number 1
    np.testing.assert_allclose(tables["01"].xyz, [[40, 80, 20]])
    np.testing.assert_allclose(tables["02"].xyz, [[10, 20, 5]])
    assert tables["01"].meta["binning"] == 10 and tables["02"].meta["binning"] == 10


def test_relion4_without_any_pixel_size_is_binning_one(tmp_path):
    path, = F.write_format(Picks([1], [[4, 5, 6]], None, "TS_01"), "relion4", tmp_path)
    particles, optics = _relion4_rows(path)
    assert optics is None and "rlnOpticsGroup" not in particles
    np.testing.assert_allclose(particles[list(R.XYZ_PIXEL)].to_numpy(), [[4, 5, 6]])
    path, = F.write_format(Picks([1], [[4, 5, 6]], None, "TS_01"), "relion4", tmp_path,
                           binning=2)
    np.testing.assert_allclose(F.read_any(path, binning=2)[0].xyz, [[4, 5, 6]])


def test_relion5_takes_the_voxel_size_from_binning_and_pixel_size(tmp_path):
    table = Picks([1], [[20, 15, 10]], None, "TS_01", 5.4)
    path, = F.write_format(table, "relion5", tmp_path, shapes=SHAPE, binning=4)
    _, optics = _relion4_rows(path)
    assert optics["rlnTomoTiltSeriesPixelSize"].tolist() == [1.35]
    back, = F.read_any(path, shape=SHAPE, binning=4)  # voxel = 1.35 A x 4
    np.testing.assert_allclose(back.xyz, table.xyz)
    assert back.voxel_size == pytest.approx(5.4)
    with pytest.raises(DeepETPickerError, match="voxel size 10 A is not binning 4"):
        F.read_any(path, shape=SHAPE, binning=4, voxel_size=10.0)


# --- rlnTomoName ----------------------------------------------------------------------------
def test_tomo_name_template_for_relion5_reconstructions(tmp_path):
    # RELION 5 writes tomogram TS_01 as rec_TS_01.mrc; picks made there are 'rec_TS_01'
    table = Picks([1], [[20, 15, 10]], None, "rec_TS_01", 2.0)
    for fmt in ("relion4", "relion5"):
        path, = F.write_format(table, fmt, tmp_path / fmt, shapes=SHAPE,
                               tomo_name="rec_{name}")
        particles, _ = _relion4_rows(path)
        assert particles["rlnTomoName"].tolist() == ["TS_01"]
        # reading applies the relation backwards: the picks belong to rec_TS_01 again
        back, = F.read_any(path, shape=SHAPE, voxel_size=2.0, tomo_name="rec_{name}")
        assert back.tomo_name == "rec_TS_01"
        np.testing.assert_allclose(back.xyz, table.xyz)
    with pytest.raises(DeepETPickerError, match=r"Tomogram 'TS_02' does not match --tomo-name "
                                                r"'rec_\{name\}'"):
        F.write_format(Picks([1], [[1, 2, 3]], None, "TS_02"), "relion4", tmp_path,
                       tomo_name="rec_{name}")


def test_tomo_name_template_with_stem_and_mappings(tmp_path):
    tables = [Picks([1], [[1, 2, 3]], None, "01"), Picks([1], [[4, 5, 6]], None, "02")]
    path, = F.write_format(tables, "relion4", tmp_path, tomo_name="TS_{stem}")
    assert _relion4_rows(path)[0]["rlnTomoName"].tolist() == ["TS_01", "TS_02"]
    assert [t.tomo_name for t in F.read_any(path, tomo_name="TS_{stem}")] == ["01", "02"]
    assert [t.tomo_name for t in F.read_any(path)] == ["TS_01", "TS_02"]
    with pytest.raises(DeepETPickerError, match=r"rlnTomoName 'TS_01' does not match "
                                                r"--tomo-name 'x_\{stem\}'"):
        F.read_any(path, tomo_name="x_{stem}")
    # STEM=NAME pairs and a mapping file
    path, = F.write_format(tables, "relion4", tmp_path / "pairs",
                           tomo_name=["01=lamella_a", "02=lamella_b"])
    assert _relion4_rows(path)[0]["rlnTomoName"].tolist() == ["lamella_a", "lamella_b"]
    names = tmp_path / "names.txt"
    names.write_text("# stem  rlnTomoName\n01 lamella_a\n02\tlamella_b\n")
    assert [t.tomo_name for t in F.read_any(path, tomo_name=str(names))] == ["01", "02"]
    with pytest.raises(DeepETPickerError, match=r"Tomogram '03' has no entry in the tomogram "
                                                r"name mapping.*Add '03=NAME'"):
        F.write_format(Picks([1], [[1, 2, 3]], None, "03"), "relion4", tmp_path,
                       tomo_name=str(names))
    with pytest.raises(DeepETPickerError, match=r"must hold \{stem\}.*or \{name\}"):
        F.tomo_names("rec_{tomo}")
    with pytest.raises(DeepETPickerError, match=r"Tomograms '01' and '02' are both mapped to "
                                                r"rlnTomoName 'same'"):
        F.write_format(tables, "relion4", tmp_path, tomo_name={"01": "same", "02": "same"})


# --- object names ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["box", "copick", "ndjson"])
def test_named_objects_read_back_as_distinct_classes_without_the_names(tmp_path, fmt):
    table = Picks([1, 2, 2, 3], [[1, 2, 3], [4, 5, 6], [7, 8, 9], [2, 2, 2]], None, "TS_01",
                  VOXEL)
    names = ["ribosome", "proteasome", "class-3"]
    files = F.write_format(table, fmt, tmp_path / "a", class_names=names)
    found = []
    ids = {}
    for path in files:  # without class names
        table_back, = F.read_any(path, class_names=found)
        assert len(set(table_back.classes.tolist())) == 1
        cls = int(table_back.classes[0])
        ids[table_back.meta.get("object") or F.class_name(cls)] = cls
    assert sorted(ids) == sorted(names)
    assert len(set(ids.values())) == 3  # three names, three classes
    assert set(found) >= {"ribosome", "proteasome"}
    back = _read_all(files)["TS_01"]
    # read -> write -> read: the names travel, and the positions of each name are equal
    again = C.convert(files, fmt, tmp_path / "b")
    assert sorted(p.name for p in again) == sorted(p.name for p in files)
    regained = _read_all(again)["TS_01"]
    np.testing.assert_allclose(_sorted(regained).xyz, _sorted(back).xyz)
    if fmt != "copick":  # box and ndjson names carry the class id too
        np.testing.assert_array_equal(_sorted(regained).classes, _sorted(table).classes)


def test_box_and_ndjson_object_names_in_file_names(tmp_path):
    table = Picks([1, 2], [[1, 2, 3], [4, 5, 6]], None, "TS_01")
    files = F.write_format(table, "box", tmp_path, class_names=["ribosome", "proteasome"])
    assert [p.name for p in files] == ["TS_01_class-1-ribosome.box",
                                       "TS_01_class-2-proteasome.box"]
    # files named <tomo>_<object> by other programs split by the names or the tomograms
    (tmp_path / "TS_01_fas.box").write_text("1\t2\t3\n")
    table, = F.read_any(tmp_path / "TS_01_fas.box")
    assert (table.tomo_name, table.classes.tolist()) == ("TS_01_fas", [1])
    table, = F.read_any(tmp_path / "TS_01_fas.box", class_names=["ribosome", "fas"])
    assert (table.tomo_name, table.classes.tolist()) == ("TS_01", [2])
    table, = F.read_any(tmp_path / "TS_01_fas.box", tomograms={"TS_01": "t/TS_01.mrc"})
    assert (table.tomo_name, table.meta["object"]) == ("TS_01", "fas")
    # a given name wins over the id in the file name
    table, = F.read_any(files[1], class_names=["proteasome"])
    assert table.classes.tolist() == [1]


def test_copick_refuses_names_copick_would_refuse(tmp_path):
    table = Picks([1, 2], [[1, 2, 3], [4, 5, 6]], None, "TS_01", VOXEL)
    for bad, problem in [("80S ribosome", "contains space"), ("80S_ribosome", "contains '_'"),
                         ("a/b", "contains '/'"), ("-ribosome", "starts or ends with '-'")]:
        with pytest.raises(DeepETPickerError, match=rf"Class name '{re.escape(bad)}' \(class 2\) "
                                                    rf"is not a valid copick object name: it "
                                                    rf"{problem}.*not written"):
            F.write_format(table, "copick", tmp_path, class_names=["ribosome", bad])
    assert not (tmp_path / "ExperimentRuns").exists()
    assert F.copick_safe_name("80S_ribosome large") == "80S-ribosome-large"
    assert F.copick_name_problem("class-1") is None
    # box keeps such a name (it is a file name there), but not a path separator
    F.write_format(table, "box", tmp_path, class_names=["ribosome", "80S_ribosome"])
    with pytest.raises(DeepETPickerError, match=r"'a/b' \(class 2\) holds a path separator"):
        F.write_format(table, "box", tmp_path, class_names=["ribosome", "a/b"])
    with pytest.raises(DeepETPickerError, match=r"Class names 1 and 2 are both 'x'"):
        F.write_format(table, "box", tmp_path, class_names=["x", "x"])
    # a name read from a file is checked as well before copick is written
    (tmp_path / "TS_01_class-1-80S_ribosome.box").write_text("1 2 3\n")
    with pytest.raises(DeepETPickerError, match="'80S_ribosome' .*not a valid copick"):
        C.convert([tmp_path / "TS_01_class-1-80S_ribosome.box"], "copick", tmp_path / "c",
                  voxel_size=VOXEL)
    with pytest.raises(DeepETPickerError, match="'a b'.*not a valid copick"):
        F.check_export(["coords", "copick"], class_names=["a b"])


def test_convert_names_the_pick_files_without_a_matching_tomogram(tmp_path):
    tomo_dir = tmp_path / "tomos"
    write_tomogram(tomo_dir / "rec_TS_01.mrc", np.zeros(SHAPE, np.float32), voxel_size=VOXEL)
    picks = tmp_path / "picks"
    write_picks(picks / "TS_01.coords", Picks([1], [[1, 2, 3]], None, "TS_01"))
    write_picks(picks / "TS_02.coords", Picks([1], [[1, 2, 3]], None, "TS_02"))
    with pytest.raises(DeepETPickerError, match=r"No tomogram given with --tomogram matches the "
                                                r"picks of 'TS_01' from .*TS_01.coords; 'TS_02' "
                                                r"from .*TS_02.coords\. Tomograms given: "
                                                r"rec_TS_01 \(.*rec_TS_01.mrc\)"):
        C.convert([picks], "copick", tmp_path / "out", tomograms=[tomo_dir])
    # a RELION 5 file needs the shape while it is read: the message lists the tomograms too
    star, = F.write_format(Picks([1], [[1, 2, 3]], None, "TS_01", VOXEL), "relion5",
                           tmp_path / "r5", shapes=SHAPE)
    with pytest.raises(DeepETPickerError, match=r"shape of tomogram 'TS_01' is needed.*No "
                                                r"tomogram given with --tomogram is named "
                                                r"'TS_01' \(given: rec_TS_01"):
        C.convert([star], "coords", tmp_path / "out", tomograms=[tomo_dir])
    # mapping rlnTomoName TS_01 to the tomogram rec_TS_01 makes it match
    files = C.convert([star], "coords", tmp_path / "out", tomograms=[tomo_dir],
                      tomo_name="rec_{name}")
    assert [p.name for p in files] == ["rec_TS_01.coords"]
    with pytest.raises(DeepETPickerError, match="--tomo-name sets rlnTomoName of RELION 4/5"):
        C.convert([picks], "coords", tmp_path / "out", tomo_name="rec_{name}")


def test_convert_relion4_round_trip_with_binning(tmp_path):
    original = _tables()[0]
    write_picks(tmp_path / "TS_01.coords", original)
    star, = C.convert([tmp_path / "TS_01.coords"], "relion4", tmp_path / "r4", binning=4,
                      voxel_size=VOXEL)
    particles, optics = _relion4_rows(star)
    np.testing.assert_allclose(particles[list(R.XYZ_PIXEL)].to_numpy(),
                               original.xyz * 4, atol=1e-5)
    assert optics["rlnTomoTiltSeriesPixelSize"].tolist() == [VOXEL / 4]
    back, = C.convert([star], "coords", tmp_path / "c", voxel_size=VOXEL)
    got = F.read_any(back)[0]
    np.testing.assert_allclose(_sorted(got).xyz, _sorted(original).xyz, atol=1e-5)
    np.testing.assert_array_equal(_sorted(got).classes, _sorted(original).classes)


# --- the convert command ---------------------------------------------------------------------
def test_convert_help_says_what_each_format_needs(capsys):
    from deepetpicker.cli import build_parser, main

    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "relion5 RELION 5, Angstrom from the tomogram centre --voxel-size and --shape" in text
    assert "copick Angstrom, 0-based (voxel x voxel size) --voxel-size" in text
    assert "tbl Dynamo, 1-based voxels" in text and "takes them as 0-based" in text
    assert "UNBINNED tilt" in text
    convert_parser = build_parser()._subparsers._group_actions[0].choices["convert"]
    helps = {a.option_strings[-1]: a.help for a in convert_parser._actions if a.option_strings}
    for option in ("--voxel-size", "--shape", "--tomogram", "--class", "--class-names",
                   "--binning", "--tilt-series-pixel-size", "--tomo-name"):
        assert "default" in helps[option] and "Example: " + option in helps[option], option


def test_convert_command_with_the_new_options(tmp_path, capsys):
    from deepetpicker.cli import build_parser, main

    write_picks(tmp_path / "rec_TS_01.coords",
                Picks([1, 2], [[10, 20, 5], [1, 2, 3]], [0.9, 0.8], "rec_TS_01"))
    out = tmp_path / "r4"
    assert main(["convert", str(tmp_path / "rec_TS_01.coords"), "--to", "relion4", "--out",
                 str(out), "--voxel-size", "5.4", "--binning", "4", "--tomo-name",
                 "rec_{name}"]) == 0
    particles, optics = _relion4_rows(out / "particles_relion4.star")
    assert particles["rlnTomoName"].tolist() == ["TS_01", "TS_01"]
    np.testing.assert_allclose(particles["rlnCoordinateX"], [40, 4])
    assert main(["convert", str(out / "particles_relion4.star"), "--to", "box", "--out",
                 str(tmp_path / "box"), "--voxel-size", "5.4", "--tomo-name", "rec_{name}",
                 "--class-names", "ribosome", "proteasome"]) == 0
    assert sorted(p.name for p in (tmp_path / "box").glob("*.box")) == [
        "rec_TS_01_class-1-ribosome.box", "rec_TS_01_class-2-proteasome.box"]
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "box"), "--to", "copick", "--out",
                 str(tmp_path / "cp"), "--voxel-size", "5.4", "--class-names", "ribosome",
                 "80S ribosome"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Class name '80S ribosome' (class 2) is not a valid copick")
    args = build_parser().parse_args(["predict", "c.py", "--weights", "w.pth", "--format",
                                      "copick", "--class-names", "a", "b", "--binning", "2"])
    assert (args.class_names, args.binning, args.tomo_name) == (["a", "b"], 2.0, None)


def test_convert_never_replaces_an_input_or_a_users_file(tmp_path):
    mix = tmp_path / "mix.coords"
    write_picks(mix, Picks([1, 2, 2], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]))
    before = mix.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(DeepETPickerError, match="mix.coords is an input"):
            C.convert([mix], "coords", tmp_path, class_id=1, overwrite=overwrite)
    assert mix.read_bytes() == before
    # a file of the user's in the way: refused, even with --overwrite
    out = tmp_path / "out"
    out.mkdir()
    (out / "particles.star").write_text("# my own star file\n")
    for overwrite in (False, True):
        with pytest.raises(DeepETPickerError, match="not written by DeepETPicker"):
            C.convert([mix], "star", out, overwrite=overwrite)
    assert (out / "particles.star").read_text() == "# my own star file\n"


def test_convert_again_and_an_earlier_conversion(tmp_path):
    a, b = tmp_path / "a.coords", tmp_path / "b.coords"
    write_picks(a, Picks([1], [[1, 2, 3]]))
    write_picks(b, Picks([1], [[4, 5, 6]]))
    out = tmp_path / "out"
    star = out / "particles.star"
    C.convert([a], "star", out)

    def body():          # the header holds the time of writing
        return [line for line in star.read_text().splitlines() if not line.startswith("#")]

    first = body()
    assert C.convert([a], "star", out) == [star] and body() == first      # same again
    with pytest.raises(DeepETPickerError, match="earlier DeepETPicker run.*--overwrite"):
        C.convert([b], "star", out)                                            # other inputs
    assert body() == first
    C.convert([b], "star", out, overwrite=True)
    assert "4" in star.read_text() and body() != first


@pytest.mark.parametrize("fmt", ["star", "relion4", "relion5", "tbl"])
def test_one_table_formats_write_the_file_name_given(tmp_path, fmt):
    from deepetpicker.io.format_specs import format_spec

    suffix = format_spec(fmt).suffix
    files = F.write_format(_tables(), fmt, tmp_path, shapes=SHAPE,
                           file_name=f"chosen{suffix}")
    assert files[0] == tmp_path / f"chosen{suffix}"
    # Dynamo's table map takes the table's stem; nothing else is written
    expected = {f"chosen{suffix}"} | ({"chosen.doc"} if fmt == "tbl" else set())
    assert {p.name for p in tmp_path.iterdir()} == expected == {p.name for p in files}
    tables = _read_all(files, shape=SHAPE, voxel_size=VOXEL)
    for want in _tables():
        got = _sorted(tables[want.tomo_name])
        assert np.allclose(got.xyz, _sorted(want).xyz, atol=1e-4)


def test_a_file_name_is_refused_where_the_format_names_its_files(tmp_path):
    with pytest.raises(DeepETPickerError, match="EMAN2 box format .box. writes its own file "
                                                "names.*star, relion4, relion5, tbl"):
        F.write_format(_tables(), "box", tmp_path, file_name="mine.box")
    with pytest.raises(DeepETPickerError, match=r"ends in \.star, not \.txt \(mine\.txt\); "
                                                r"name it mine\.star"):
        F.write_format(_tables(), "relion5", tmp_path, shapes=SHAPE, file_name="mine.txt")
    with pytest.raises(DeepETPickerError, match="not a file name"):
        F.write_format(_tables(), "star", tmp_path, file_name="sub/mine.star")
    assert not list(tmp_path.iterdir())


def test_export_picks_writes_the_chosen_file_and_leaves_the_others(tmp_path):
    from deepetpicker.ops.picks_files import export_picks, read_pick_file

    first, second = _tables()
    (tmp_path / "notes.txt").write_text("mine")
    for fmt in ("star", "relion4", "relion5"):
        one = export_picks(first, fmt, tmp_path, SHAPE, chosen=tmp_path / f"a_{fmt}.star")
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()
                  if not p.name.startswith(".deepetpicker")}
        two = export_picks(second, fmt, tmp_path, SHAPE, chosen=tmp_path / f"b_{fmt}.star")
        assert [p.name for p in one] == [f"a_{fmt}.star"]
        assert [p.name for p in two] == [f"b_{fmt}.star"]
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir()
                 if not p.name.startswith(".deepetpicker") and p.name != f"b_{fmt}.star"}
        assert after == before
        for path, table in ((one[0], first), (two[0], second)):
            back = read_pick_file(path, SHAPE, table.tomo_name, voxel_size=VOXEL)
            assert back.tomo_name == table.tomo_name
            assert np.allclose(back.xyz, table.xyz, atol=1e-3)


def test_read_pick_file_takes_the_open_tomograms_shape_and_voxel_size(tmp_path):
    from deepetpicker.ops.picks_files import read_pick_file

    path, = F.write_format(_tables(), "relion5", tmp_path, shapes=SHAPE)
    for want in _tables():
        got = read_pick_file(path, SHAPE, want.tomo_name, voxel_size=VOXEL)
        assert got.tomo_name == want.tomo_name and got.voxel_size == VOXEL
        assert np.allclose(got.xyz, want.xyz, atol=1e-3)
    # a file of one tomogram is read whatever its tomogram's name
    single, = F.write_format(_tables()[:1], "relion5", tmp_path / "one", shapes=SHAPE)
    got = read_pick_file(single, SHAPE, "renamed", voxel_size=VOXEL)
    assert np.allclose(got.xyz, _tables()[0].xyz, atol=1e-3)
    with pytest.raises(DeepETPickerError, match=r"several tomograms \(TS_01, TS_02\) and none "
                                                r"is named 'TS_03'"):
        read_pick_file(path, SHAPE, "TS_03", voxel_size=VOXEL)
