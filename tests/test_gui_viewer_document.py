"""The viewer's document without any widget: opening, edits and the unsaved state, the
autosave file on disk, recovery after a crash, saving and exporting."""

import os

import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.formats import read_any
from deepetpicker.io.picks import Picks, read_picks, write_picks
from deepetpicker.io.tomogram import write_tomogram
from gui.picks_model import autosave_path
from gui.viewer_document import Recovery, ViewerDocument

from gui_fixtures import make_tomogram

SHAPE = (12, 20, 28)  # z, y, x


def rows_of(path):
    picks = read_picks(path)
    return sorted((int(c), *map(float, p)) for c, p in zip(picks.classes, picks.xyz))


@pytest.fixture
def data(tmp_path):
    """``tomo.mrc`` with ``tomo.coords`` (class 1 at (14, 10, 6), class 2 at (22, 5, 4))."""
    write_tomogram(tmp_path / "tomo.mrc", make_tomogram(SHAPE), voxel_size=10.0)
    write_picks(tmp_path / "tomo.coords",
                Picks([1, 2], [(14, 10, 6), (22, 5, 4)], tomo_name="tomo"))
    return tmp_path


class Recorder:
    def __init__(self, doc):
        self.titles = 0
        self.status = []
        doc.title_changed.connect(self._title)
        doc.status_message.connect(self.status.append)

    def _title(self):
        self.titles += 1


@pytest.fixture
def doc(qapp, settings):
    document = ViewerDocument(settings)
    yield document
    document._autosave_timer.stop()


def test_open_a_tomogram_and_its_picks(doc, data, settings):
    seen = Recorder(doc)
    assert doc.title() == "" and doc.picks_target is None and not doc.unsaved
    tomo = doc.open_tomogram(data / "tomo.mrc")
    assert tomo.shape == SHAPE and doc.tomogram is tomo
    assert doc.default_picks_path == data / "tomo.coords" == doc.picks_target
    assert doc.title() == "tomo.mrc - new picks" and doc.needs_file_name
    assert doc.picks.shape == SHAPE and doc.picks.voxel_size == 10.0
    assert seen.status == ["Opened tomo.mrc (28 x 20 x 12)"]

    doc.load_picks(data / "tomo.coords")
    assert doc.picks.rows.tolist() == [[1, 14, 10, 6, 1], [2, 22, 5, 4, 1]]
    assert doc.picks.path == data / "tomo.coords" and not doc.needs_file_name
    assert doc.title() == "tomo.mrc - tomo.coords" and not doc.unsaved
    assert seen.status[-1] == "Loaded 2 picks from tomo.coords" and seen.titles >= 2
    assert settings.value("viewer/tomogram") == str(data / "tomo.mrc")
    assert settings.value("viewer/picks") == str(data / "tomo.coords")


def test_edits_make_the_picks_unsaved_and_undo_brings_back_the_saved_state(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    doc.load_picks(data / "tomo.coords")
    seen = Recorder(doc)
    doc.picks.add(2, 3, 4, 5)
    assert doc.unsaved and doc.title() == "tomo.mrc - tomo.coords *"
    doc.picks.move(0, 15, 11, 7)
    doc.picks.remove([1])
    assert doc.picks.rows.tolist() == [[1, 15, 11, 7, 1], [2, 3, 4, 5, 1]]
    assert seen.titles >= 3
    for _ in range(3):
        doc.picks.undo_stack.undo()
    assert not doc.unsaved and doc.title() == "tomo.mrc - tomo.coords"
    assert doc.autosave_now() is None  # nothing unsaved: nothing written
    assert not autosave_path(data / "tomo.coords").exists()


def test_autosave_writes_the_unsaved_picks_beside_the_pick_file(doc, data, qtbot):
    doc.autosave_delay_ms = 10
    doc.open_tomogram(data / "tomo.mrc")
    doc.load_picks(data / "tomo.coords")
    auto = data / ".tomo.autosave.coords"
    doc.picks.add(1, 20, 15, 3)
    doc.picks.move(1, 21, 6, 4)
    qtbot.waitUntil(auto.exists, timeout=2000)
    assert rows_of(auto) == [(1, 14.0, 10.0, 6.0), (1, 20.0, 15.0, 3.0), (2, 21.0, 6.0, 4.0)]
    # the pick file itself is untouched until Save
    assert rows_of(data / "tomo.coords") == [(1, 14.0, 10.0, 6.0), (2, 22.0, 5.0, 4.0)]
    doc.picks.remove([0])
    assert doc.autosave_now() == auto
    assert rows_of(auto) == [(1, 20.0, 15.0, 3.0), (2, 21.0, 6.0, 4.0)]


def test_new_picks_are_autosaved_beside_the_default_file(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    doc.picks.add(1, 1, 2, 3)
    assert doc.autosave_now() == data / ".tomo.autosave.coords"
    assert rows_of(data / ".tomo.autosave.coords") == [(1, 1.0, 2.0, 3.0)]


def test_a_failed_autosave_is_reported_and_the_picks_stay_unsaved(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    (data / "blocker").write_text("a file where a folder should be")
    doc.picks.path = data / "blocker" / "picks.coords"
    doc.picks.add(1, 1, 2, 3)
    seen = Recorder(doc)
    assert doc.autosave_now() is None
    assert seen.status[-1].startswith(f"Autosave to {data / 'blocker' / '.picks.autosave.coords'}"
                                      f" failed:")
    assert doc.unsaved


def test_save_writes_the_pick_file_and_removes_the_autosave(doc, data, settings):
    doc.open_tomogram(data / "tomo.mrc")
    doc.load_picks(data / "tomo.coords")
    doc.picks.add(2, 7, 8, 9)
    doc.picks.remove([0])
    auto = doc.autosave_now()
    assert auto.is_file()
    seen = Recorder(doc)
    assert doc.save() == [data / "tomo.coords"]
    assert rows_of(data / "tomo.coords") == [(2, 7.0, 8.0, 9.0), (2, 22.0, 5.0, 4.0)]
    assert not auto.exists() and not doc.unsaved
    assert doc.title() == "tomo.mrc - tomo.coords"
    assert seen.status == ["Saved 2 picks to tomo.coords"]
    assert settings.value("viewer/picks") == str(data / "tomo.coords")


def test_new_picks_need_a_file_name_and_save_as_makes_it_the_pick_file(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    doc.picks.add(1, 5, 6, 7)
    default_auto = doc.autosave_now()
    assert default_auto == data / ".tomo.autosave.coords"
    assert doc.needs_file_name
    with pytest.raises(DeepETPickerError, match="use Save As"):
        doc.save()
    assert doc.unsaved and default_auto.is_file()
    assert doc.save(data / "mine.txt") == [data / "mine.txt"]
    assert rows_of(data / "mine.txt") == [(1, 5.0, 6.0, 7.0)]
    assert doc.picks.path == data / "mine.txt" and not doc.unsaved
    assert not default_auto.exists()  # the new picks' autosave went with the save
    assert doc.title() == "tomo.mrc - mine.txt"


def test_exporting_unsaved_picks_keeps_them_unsaved_with_their_autosave(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    doc.load_picks(data / "tomo.coords")
    doc.picks.add(1, 3, 3, 3)
    auto = doc.autosave_now()
    written = doc.save(data / "export" / "picks.star", fmt="star")
    assert [p.suffix for p in written] == [".star"]
    (table,) = read_any(written[0])
    assert sorted(map(tuple, table.xyz.tolist())) == [(3, 3, 3), (14, 10, 6), (22, 5, 4)]
    assert doc.picks.path == data / "tomo.coords" and doc.unsaved
    assert rows_of(auto) == [(1, 3.0, 3.0, 3.0), (1, 14.0, 10.0, 6.0), (2, 22.0, 5.0, 4.0)]


def test_a_save_that_cannot_write_names_the_file_and_the_fix(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    doc.picks.add(1, 3, 3, 3)
    (data / "blocker").write_text("")
    with pytest.raises(DeepETPickerError, match="blocker.*Save As"):
        doc.save(data / "blocker" / "picks.coords")
    assert doc.unsaved and doc.picks.path is None


def test_recovery_after_a_crash_restores_the_autosaved_picks(qapp, settings, data):
    first = ViewerDocument(settings)
    first.open_tomogram(data / "tomo.mrc")
    first.load_picks(data / "tomo.coords")
    first.picks.add(2, 25, 18, 10)
    first.picks.remove([0])
    auto = first.autosave_now()
    settings.sync()
    # the program dies here: nothing saved, the autosave file stays behind
    first.picks.undo_stack.setClean()
    del first

    again = ViewerDocument(settings)
    assert again.last_session() == (data / "tomo.mrc", data / "tomo.coords")
    tomo, picks = again.last_session()
    again.open_tomogram(tomo)
    again.load_picks(picks)
    assert not again.unsaved and len(again.picks) == 2
    recovery = again.recovery(again.picks.path)
    assert isinstance(recovery, Recovery)
    assert recovery.picks_path == data / "tomo.coords" and recovery.autosave == auto
    assert recovery.written_at == pytest.approx(os.path.getmtime(auto))
    assert len(recovery.picks) == 2
    again.restore(recovery)
    assert again.unsaved and again.title() == "tomo.mrc - tomo.coords *"
    assert again.picks.rows.tolist() == [[2, 22, 5, 4, 1], [2, 25, 18, 10, 1]]
    assert again.picks.tomo_name == "tomo"
    assert again.save() == [data / "tomo.coords"]
    assert rows_of(data / "tomo.coords") == [(2, 22.0, 5.0, 4.0), (2, 25.0, 18.0, 10.0)]
    assert not auto.exists() and again.last_session() is None


def test_recovery_of_new_picks_that_were_never_saved(qapp, settings, data):
    first = ViewerDocument(settings)
    first.open_tomogram(data / "tomo.mrc")
    first.picks.add(1, 4, 4, 4)
    first.autosave_now()
    first.picks.undo_stack.setClean()

    again = ViewerDocument(settings)
    assert again.last_session() == (data / "tomo.mrc", None)
    again.open_tomogram(data / "tomo.mrc")
    (data / "tomo.coords").unlink()  # no pick file: the restored picks have none either
    recovery = again.recovery(again.default_picks_path)
    again.restore(recovery)
    assert again.picks.rows.tolist() == [[1, 4, 4, 4, 1]]
    assert again.unsaved and again.needs_file_name
    assert again.title() == "tomo.mrc - new picks *"


def test_declined_or_unreadable_autosaves(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    auto = autosave_path(data / "tomo.coords")
    write_picks(auto, Picks([1], [(1, 1, 1)]))
    recovery = doc.recovery(data / "tomo.coords")
    doc.drop_recovery(recovery)
    assert not auto.exists() and doc.recovery(data / "tomo.coords") is None
    assert doc.recovery(None) is None

    auto.write_text("1\t900\t1\t1\n")  # outside the tomogram
    seen = Recorder(doc)
    assert doc.recovery(data / "tomo.coords") is None
    assert seen.status[-1].startswith("Ignoring an unreadable autosave file:")
    assert "x=900" in seen.status[-1] and auto.exists()  # kept: it may belong elsewhere


def test_discard_drops_the_autosave_of_the_unsaved_picks(doc, data):
    doc.open_tomogram(data / "tomo.mrc")
    doc.load_picks(data / "tomo.coords")
    doc.picks.add(1, 2, 2, 2)
    auto = doc.autosave_now()
    doc.discard()
    assert not auto.exists() and not doc._autosave_timer.isActive()
    assert rows_of(data / "tomo.coords") == [(1, 14.0, 10.0, 6.0), (2, 22.0, 5.0, 4.0)]


def test_errors_on_files_name_the_file_and_leave_the_document_as_it_was(doc, data):
    with pytest.raises(DeepETPickerError, match="Open the tomogram the picks belong to"):
        doc.load_picks(data / "tomo.coords")
    (data / "broken.mrc").write_bytes(b"not an MRC file")
    with pytest.raises(DeepETPickerError, match="broken.mrc"):
        doc.open_tomogram(data / "broken.mrc")
    assert doc.tomogram is None

    doc.open_tomogram(data / "tomo.mrc")
    doc.load_picks(data / "tomo.coords")
    doc.picks.add(1, 1, 1, 1)
    (data / "far.coords").write_text("1\t5\t5\t5\n2\t500\t5\t5\n")
    with pytest.raises(DeepETPickerError, match="far.coords, line 2: pick at x=500"):
        doc.load_picks(data / "far.coords")
    assert len(doc.picks) == 3 and doc.unsaved and doc.picks.path == data / "tomo.coords"

    write_tomogram(data / "small.mrc", make_tomogram((12, 10, 28)))
    with pytest.raises(DeepETPickerError, match=r"small.mrc has shape \(12, 10, 28\).*"
                                                r"tomo.mrc has \(12, 20, 28\)"):
        doc.load_mask("occupancy", data / "small.mrc")
    labels = make_tomogram(SHAPE)
    write_tomogram(data / "labels.mrc", labels)
    assert doc.load_mask("labels", data / "labels.mrc").shape == SHAPE
