"""The viewer's picks model: edits, undo/redo, saved state, files and autosave."""

import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.formats import read_any
from deepetpicker.io.picks import Picks, read_picks, write_picks
from gui.picks_model import PicksModel, autosave_path, new_drag_id


@pytest.fixture
def model(qapp):
    m = PicksModel()
    m.clear("tomo", shape=(20, 30, 40), voxel_size=10.0)
    return m


def test_add_delete_move_with_undo_and_redo(model):
    dirty = []
    model.dirty_changed.connect(dirty.append)
    a = model.add(1, 5, 6, 7)
    b = model.add(2, 10.5, 11, 12)
    assert (a, b) == (0, 1) and model.dirty and dirty == [True]
    assert model.rows.tolist() == [[1, 5, 6, 7, 1], [2, 10.5, 11, 12, 1]]
    model.move(0, 8, 9, 7)
    model.remove([0])
    assert model.rows.tolist() == [[2, 10.5, 11, 12, 1]]
    model.undo_stack.undo()  # delete
    assert model.rows[:, 1:4].tolist() == [[8, 9, 7], [10.5, 11, 12]]
    model.undo_stack.undo()  # move
    assert model.rows[0, 1:4].tolist() == [5, 6, 7]
    model.undo_stack.undo()
    model.undo_stack.undo()
    assert len(model) == 0 and not model.dirty and dirty == [True, False]
    for _ in range(4):
        model.undo_stack.redo()
    assert model.rows.tolist() == [[2, 10.5, 11, 12, 1]]


def test_moves_of_one_drag_undo_together_and_stay_inside(model):
    model.add(1, 5, 5, 5)
    drag = new_drag_id()
    for x in (6, 7, 8):
        model.move(0, x, 5, 5, drag_id=drag)
    model.move(0, 8, 6, 5, drag_id=new_drag_id())
    assert model.undo_stack.count() == 3  # add, one drag, one more move
    model.undo_stack.undo()
    assert model.xyz[0].tolist() == [8, 5, 5]
    model.undo_stack.undo()
    assert model.xyz[0].tolist() == [5, 5, 5]
    model.move(0, -4, 100, 3)
    assert model.xyz[0].tolist() == [0, 29, 3]  # clipped to x 0..39, y 0..29
    with pytest.raises(DeepETPickerError, match="Class 0 is not allowed"):
        model.add(0, 1, 1, 1)


def test_delete_several_and_undo_restores_order(model):
    for i in range(5):
        model.add(1 + i % 2, i, i, i)
    model.remove([3, 1])
    assert model.xyz[:, 0].tolist() == [0, 2, 4]
    model.undo_stack.undo()
    assert model.xyz[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert model.classes.tolist() == [1, 2, 1, 2, 1]


def test_load_save_roundtrip_and_autosave(model, tmp_path):
    src = tmp_path / "tomo.coords"
    write_picks(src, Picks([1, 3], [[1, 2, 3], [4, 5, 6]], scores=[0.9, 0.4]))
    model.load(src)
    assert model.has_scores and model.scores.tolist() == [0.9, 0.4] and not model.dirty
    model.add(2, 7, 8, 9)
    assert model.scores[-1] == 1.0
    auto = model.write_autosave()
    assert auto == tmp_path / ".tomo.autosave.coords"
    assert read_picks(auto).classes.tolist() == [1, 3, 2]
    assert read_picks(src).classes.tolist() == [1, 3]  # the real file is untouched
    written = model.save()
    assert written == [src] and not model.dirty and not auto.exists()
    back = read_picks(src)
    assert back.xyz.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert back.scores.tolist() == [0.9, 0.4, 1.0]


def test_restored_autosave_counts_as_unsaved_until_saved(model, tmp_path):
    picks = Picks([1], [[1, 2, 3]])
    model.set_picks(picks, tmp_path / "a.coords", dirty=True)
    assert model.dirty
    model.add(1, 2, 2, 2)
    model.undo_stack.undo()
    assert model.dirty  # undoing edits does not make the restored picks saved
    model.save()
    assert not model.dirty and (tmp_path / "a.coords").exists()


def test_save_as_other_formats_exports_without_changing_the_file(model, tmp_path):
    model.add(1, 3, 4, 5)
    model.add(2, 6, 7, 8)
    written = model.save(tmp_path / "out" / "whatever.star", fmt="relion4")
    assert [p.name for p in written] == ["whatever.star"]  # the file chosen
    tables = read_any(written[0])
    assert tables[0].tomo_name == "tomo"
    assert tables[0].xyz.tolist() == [[3, 4, 5], [6, 7, 8]]
    assert model.path is None and model.dirty
    box = model.save(tmp_path / "x.box")  # format known from the suffix
    assert {p.name for p in box} == {"tomo_class-1.box", "tomo_class-2.box"}
    with pytest.raises(DeepETPickerError, match=r"unknown suffix '\.xyz'"):
        model.save(tmp_path / "picks.xyz")
    # exporting again replaces the earlier export; a file of the user's in the way is kept
    # unless it is the file chosen in the dialog (which asked before replacing it)
    assert model.save(tmp_path / "out" / "whatever.star", fmt="relion4") == written
    mine = tmp_path / "tomo_class-1.box"
    mine.write_text("my box file\n")
    with pytest.raises(DeepETPickerError, match="tomo_class-1.box was not written by"):
        model.save(tmp_path / "other.box")
    assert mine.read_text() == "my box file\n" and (tmp_path / "tomo_class-2.box").is_file()
    assert model.save(mine)[0] == mine and mine.read_text() != "my box file\n"
    with pytest.raises(DeepETPickerError, match="use Save As"):
        model.save()


def test_loading_picks_outside_the_tomogram_is_refused(model, tmp_path):
    bad = tmp_path / "bad.coords"
    bad.write_text("1\t5\t5\t5\n1\t50\t5\t5\n")
    with pytest.raises(DeepETPickerError, match=r"bad.coords, line 2: pick at x=50"):
        model.load(bad)
    assert len(model) == 0


def test_autosave_path_is_hidden_beside_the_file(tmp_path):
    assert autosave_path(tmp_path / "t1.coords") == tmp_path / ".t1.autosave.coords"
    assert autosave_path("dir/t1.star").name == ".t1.autosave.coords"
