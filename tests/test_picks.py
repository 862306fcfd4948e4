"""Pick tables: .coords/.txt/.csv reading and writing, and the errors users get."""

import numpy as np
import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import (
    Picks,
    check_in_bounds,
    format_number,
    read_picks,
    read_sidecar,
    refresh_sidecar,
    sidecar_diameters,
    sidecar_path,
    write_picks,
    write_sidecar,
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _random_picks(seed=0, n=12, with_scores=True):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(0, 30, (n, 3))
    xyz[: n // 2] = np.round(xyz[: n // 2])  # whole and fractional coordinates
    scores = rng.uniform(0, 1, n) if with_scores else None
    return Picks(rng.integers(1, 4, n), xyz, scores, "tomo_a", 10.0)


# --- writing -----------------------------------------------------------------------------
def test_coords_file_is_the_original_tab_separated_layout(tmp_path):
    picks = Picks([1, 2], [[10, 20, 30], [4.5, 5.25, 6.125]])
    path = write_picks(tmp_path / "t.coords", picks)
    assert path.read_text() == "1\t10\t20\t30\n2\t4.5\t5.25\t6.125\n"


def test_scores_are_the_fifth_column(tmp_path):
    picks = Picks([3], [[1, 2, 3]], [0.123456789])
    write_picks(tmp_path / "t.coords", picks)
    assert (tmp_path / "t.coords").read_text() == "3\t1\t2\t3\t0.123456789\n"


def test_csv_has_a_header_and_commas(tmp_path):
    write_picks(tmp_path / "t.csv", Picks([1], [[1, 2, 3.5]], [0.5]))
    assert (tmp_path / "t.csv").read_text() == "class,x,y,z,score\n1,1,2,3.5,0.5\n"


@pytest.mark.parametrize("suffix", [".coords", ".txt", ".csv"])
@pytest.mark.parametrize("with_scores", [True, False])
def test_round_trip(tmp_path, suffix, with_scores):
    picks = _random_picks(with_scores=with_scores)
    back = read_picks(write_picks(tmp_path / f"a{suffix}", picks))
    np.testing.assert_array_equal(back.classes, picks.classes)
    np.testing.assert_allclose(back.xyz, picks.xyz, atol=1e-6)
    if with_scores:
        np.testing.assert_allclose(back.scores, picks.scores, atol=1e-8)
    else:
        assert back.scores is None
    assert back.tomo_name == "a"


def test_write_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "t.coords"
    path.write_text("old content\n")
    write_picks(path, Picks([1], [[1, 2, 3]]))
    assert path.read_text() == "1\t1\t2\t3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.coords"]


def test_empty_table_writes_an_empty_file_that_reads_back_empty(tmp_path):
    path = write_picks(tmp_path / "e.coords", Picks.empty())
    assert path.read_text() == ""
    assert len(read_picks(path)) == 0


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(DeepETPickerError, match=r"\.xyz.*\.coords"):
        write_picks(tmp_path / "t.xyz", Picks([1], [[1, 2, 3]]))


def test_format_number():
    assert format_number(12.0) == "12"
    assert format_number(-3.0) == "-3"
    assert format_number(0.1) == "0.1"
    assert float(format_number(1234.56789012)) == pytest.approx(1234.56789, abs=1e-5)


# --- reading -----------------------------------------------------------------------------
def test_three_columns_are_xyz_of_class_one(tmp_path):
    picks = read_picks(_write(tmp_path, "t.txt", "1 2 3\n4 5 6\n"))
    np.testing.assert_array_equal(picks.classes, [1, 1])
    np.testing.assert_array_equal(picks.xyz, [[1, 2, 3], [4, 5, 6]])
    assert picks.scores is None


def test_separators_headers_and_comments(tmp_path):
    text = "# picked by hand\nclass, x, y, z\n2,10,20,30  # a comment\n\n1,\t11,21,31\n"
    picks = read_picks(_write(tmp_path, "t.csv", text))
    np.testing.assert_array_equal(picks.classes, [2, 1])
    np.testing.assert_array_equal(picks.xyz, [[10, 20, 30], [11, 21, 31]])


def test_header_names_map_columns_in_any_order(tmp_path):
    picks = read_picks(_write(tmp_path, "t.csv", "x,y,z,class,score\n1,2,3,4,0.5\n"))
    assert picks.classes.tolist() == [4]
    np.testing.assert_array_equal(picks.xyz, [[1, 2, 3]])
    assert picks.scores.tolist() == [0.5]


def test_header_x_y_z_only(tmp_path):
    picks = read_picks(_write(tmp_path, "t.csv", "x,y,z\n7,8,9\n"))
    assert picks.classes.tolist() == [1]


def test_empty_file_and_header_only_file_are_empty_tables(tmp_path):
    assert len(read_picks(_write(tmp_path, "a.coords", ""))) == 0
    assert len(read_picks(_write(tmp_path, "b.csv", "class,x,y,z\n"))) == 0


def test_tomo_name_and_voxel_size(tmp_path):
    path = _write(tmp_path, "TS_07.coords", "1\t1\t2\t3\n")
    assert read_picks(path).tomo_name == "TS_07"
    picks = read_picks(path, tomo_name="other", voxel_size=13.5)
    assert (picks.tomo_name, picks.voxel_size) == ("other", 13.5)


def test_coordinates_within_half_a_voxel_of_the_edge_are_accepted(tmp_path):
    # shape (z, y, x) = (10, 20, 30): x may reach 29.5, y 19.5, z 9.5
    path = _write(tmp_path, "t.coords", "1 29.4 19.5 -0.5\n")
    assert len(read_picks(path, shape=(10, 20, 30))) == 1


# --- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, pattern", [
    ("1 2\n", r"line 1: 2 columns.*Expected 3 \(x y z\)"),
    ("1 2 3 4 5 6\n", r"line 1: 6 columns"),
    ("1 2 3 4\n\n1 2 3\n", r"line 3: 3 columns but earlier rows have 4"),
    ("1 2 3 4\n1 2 abc 4\n", r"line 2: column 'y' is 'abc', not a number"),
    ("0 1 2 3\n", r"line 1: class 0 is not allowed.*start at 1"),
    ("1 1 2 3\n-2 1 2 3\n", r"line 2: class -2 is not allowed"),
    ("1.5 1 2 3\n", r"line 1: class 1.5 is not a whole number"),
    ("1 nan 2 3\n", r"line 1: column 'x' is 'nan'.*finite"),
    ("1 1 2 inf 0.5\n", r"line 1: column 'z' is 'inf'"),
    ("id x y z\n1 2 3 4\n", r"line 1: unknown column name 'id'"),
    ("class x y\n1 2 3\n", r"line 1: the header has no column z"),
])
def test_malformed_rows_name_the_file_and_line(tmp_path, text, pattern):
    path = _write(tmp_path, "bad.coords", text)
    with pytest.raises(DeepETPickerError, match=pattern) as info:
        read_picks(path)
    assert str(path) in str(info.value)


def test_class_above_num_cls(tmp_path):
    path = _write(tmp_path, "t.coords", "1 1 2 3\n3 1 2 3\n")
    assert len(read_picks(path, num_cls=3)) == 2
    with pytest.raises(DeepETPickerError, match=r"line 2: class 3 but the dataset has 2 class"):
        read_picks(path, num_cls=2)


def test_coordinates_outside_the_tomogram(tmp_path):
    path = _write(tmp_path, "t.coords", "1 5 5 5\n1 5 25 5\n1 5 5 -3\n")
    with pytest.raises(DeepETPickerError) as info:
        read_picks(path, shape=(10, 20, 30))
    message = str(info.value)
    assert "line 2" in message and "y=25" in message and "y 0..19" in message
    assert "2 pick(s) outside" in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DeepETPickerError, match="not found"):
        read_picks(tmp_path / "nope.coords")
    with pytest.raises(DeepETPickerError, match="is a folder"):
        read_picks(tmp_path)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "t.coords"
    path.write_bytes(bytes([0xFF, 0xFE, 0x00, 0x81]) * 8)
    with pytest.raises(DeepETPickerError, match="not a text pick table"):
        read_picks(path)


def test_check_in_bounds_names_row_without_line_numbers():
    check_in_bounds(np.array([[0, 0, 0], [29, 19, 9]]), (10, 20, 30))
    with pytest.raises(DeepETPickerError, match=r"src, row 2: pick at x=30.6"):
        check_in_bounds(np.array([[0, 0, 0], [30.6, 0, 0]]), (10, 20, 30), "src")


def test_sidecar_round_trip_and_diameters(tmp_path):
    picks = tmp_path / "tomo.coords"
    assert sidecar_path(picks) == tmp_path / "tomo.coords.json"
    assert read_sidecar(picks) is None and sidecar_diameters(picks) == []
    record = {"picks": "tomo.coords", "diameters": [8, 12.5], "t_seg": 0.5}
    assert write_sidecar(picks, record) == tmp_path / "tomo.coords.json"
    assert read_sidecar(picks) == record
    assert sidecar_diameters(picks) == [8.0, 12.5]
    # a sidecar without diameters, a broken one, one that is not an object
    write_sidecar(picks, {"picks": "tomo.coords"})
    assert sidecar_diameters(picks) == []
    (tmp_path / "tomo.coords.json").write_text('{"diameters": [8, ')
    assert read_sidecar(picks) is None and sidecar_diameters(picks) == []
    (tmp_path / "tomo.coords.json").write_text('[1, 2]')
    assert read_sidecar(picks) is None
    (tmp_path / "tomo.coords.json").write_text('{"diameters": ["wide"]}')
    assert sidecar_diameters(picks) == []


def test_per_pick_arrays_in_meta_follow_their_rows():
    picks = Picks(np.array([1, 2, 1]), np.arange(9.0).reshape(3, 3), np.array([0.9, 0.8, 0.7]))
    picks.meta.update(class_confidence=np.array([0.5, 0.6, 0.7]), diameters=[10.0, 12.0, 14.0])
    ones = picks.of_class(1)
    assert ones.meta["class_confidence"].tolist() == [0.5, 0.7]
    assert ones.meta["diameters"] == [10.0, 12.0, 14.0]              # a setting, not per pick
    assert picks.select(np.array([2, 0])).meta["class_confidence"].tolist() == [0.7, 0.5]


def test_writing_over_a_prediction_keeps_its_sidecar_counts_true(tmp_path):
    """Picks corrected by hand and written over a prediction's .coords: the sidecar counts
    the picks written, drops the per-pick confidences that no longer match, and says it was
    edited; the settings stay. A sidecar of another file and a table without one are left
    alone."""
    path = tmp_path / "tomo.coords"
    write_picks(path, Picks([1, 2, 2], [(1, 1, 1), (2, 2, 2), (3, 3, 3)]))
    record = {"picks": "tomo.coords", "counts": {"1": 1, "2": 2, "3": 0}, "t_seg": 0.5,
              "class_confidence": [0.9, 0.8, 0.7]}
    write_sidecar(path, record)
    assert refresh_sidecar(path, Picks([1, 2, 2], [(1, 1, 1), (2, 2, 2), (3, 3, 3)])) is None
    write_picks(path, Picks([1, 1, 2, 4], [(1, 1, 1), (5, 5, 5), (2, 2, 2), (4, 4, 4)]))
    now = read_sidecar(path)
    assert now["counts"] == {"1": 2, "2": 1, "3": 0, "4": 1}
    assert "class_confidence" not in now and now["edited"] is True and now["t_seg"] == 0.5
    write_sidecar(path, {"picks": "other.coords", "counts": {"1": 7}})
    write_picks(path, Picks([1], [(1, 1, 1)]))
    assert read_sidecar(path) == {"picks": "other.coords", "counts": {"1": 7}}
    plain = tmp_path / "plain.coords"
    write_picks(plain, Picks([1], [(1, 1, 1)]))
    assert not sidecar_path(plain).exists()
