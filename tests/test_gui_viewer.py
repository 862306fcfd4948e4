"""The Particle Visualization tab driven like a user: real mouse events on the slice views,
keys, buttons and file dialogs, and the files it writes (picks, exports, autosave)."""

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, QPointF, Qt
from PyQt5.QtGui import QWheelEvent
from PyQt5.QtWidgets import QApplication, QFileDialog, QMessageBox

import gui.dialogs as gui_dialogs
from deepetpicker.io.formats import read_any
from deepetpicker.io.picks import Picks, read_picks, write_picks
from deepetpicker.io.tomogram import write_tomogram
from gui.main_window import MainWindow
from gui.picks_model import autosave_path

from gui_fixtures import make_tomogram, mouse_click, mouse_double_click, mouse_drag, mouse_move

SHAPE = (24, 48, 64)  # z, y, x
CENTRES = ((12, 20, 30), (8, 36, 12))  # z, y, x of the two particles


@pytest.fixture(scope="module")
def volume():
    return make_tomogram(SHAPE, CENTRES, seed=1, radius=4.0)


@pytest.fixture
def data(tmp_path, volume):
    """``tomo.mrc`` with ``tomo.coords`` (classes 1 and 2 at the particles) and a second
    tomogram ``other.mrc`` without picks."""
    write_tomogram(tmp_path / "tomo.mrc", volume, voxel_size=10.0)
    write_tomogram(tmp_path / "other.mrc", volume[:, ::-1].copy(), voxel_size=10.0)
    write_picks(tmp_path / "tomo.coords",
                Picks([1, 2], [(c[2], c[1], c[0]) for c in CENTRES], tomo_name="tomo"))
    return tmp_path


def make_window(qtbot, settings):
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1360, 860)
    window.show()
    qtbot.waitExposed(window)
    window.tabs.setCurrentWidget(window.viewer_tab)
    QApplication.processEvents()
    return window


@pytest.fixture
def window(qtbot, settings, dialogs):
    window = make_window(qtbot, settings)
    yield window
    window.viewer_tab.model.undo_stack.setClean()
    window.viewer_tab.model._unsaved_load = False


def point(tab, view, xyz) -> QPoint:
    return tab.views.widget_point(view, xyz)


def rows_of(path):
    picks = read_picks(path)
    return sorted((int(c), *map(float, p)) for c, p in zip(picks.classes, picks.xyz))


def test_views_fill_their_boxes_with_square_voxels(window, data):
    tab = window.viewer_tab
    assert tab.open_tomogram(data / "tomo.mrc")
    pixels = {}
    for name, view in tab.views.views.items():
        (x0, x1), (y0, y1) = view.vb.viewRange()
        pixels[name] = (view.vb.width() / (x1 - x0), view.vb.height() / (y1 - y0))
    sizes = [p for pair in pixels.values() for p in pair]
    assert max(sizes) == pytest.approx(min(sizes), rel=0.02)  # one zoom, square voxels
    # the volume fills most of the views instead of floating in a corner
    xy = tab.views.views["xy"]
    assert xy.vb.width() / pixels["xy"][0] < 1.15 * SHAPE[2]
    assert xy.vb.height() / pixels["xy"][1] < 1.15 * SHAPE[1]
    assert tab.views.views["zy"].vb.width() < 0.6 * xy.vb.width()


def test_add_move_delete_undo_redo_with_the_mouse_then_save(window, data, qtbot, monkeypatch):
    tab = window.viewer_tab
    assert tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    assert len(tab.model) == 2 and not tab.model.dirty
    tab.spins["z"].setValue(12)
    assert tab.views.position[2] == 12
    vp = tab.views.viewport()

    # without picking enabled a double-click only moves the crosshair
    mouse_double_click(vp, point(tab, "xy", (50, 10, 12)))
    assert len(tab.model) == 2
    assert tab.views.position == [50, 10, 12]
    assert tab.spins["x"].value() == 50 and tab.sliders["y"].value() == 10

    qtbot.mouseClick(tab.picking, Qt.LeftButton)
    assert tab.picking.isChecked() and tab.picker.picking
    tab.current_class.setValue(2)
    mouse_double_click(vp, point(tab, "xy", (50, 10, 12)))
    assert len(tab.model) == 3
    assert tab.model.rows[2].tolist() == [2, 50, 10, 12, 1]
    assert tab.count_label.text() == "3 picks"
    assert window.windowTitle().endswith("tomo.mrc - tomo.coords *")

    # drag the first particle's pick by (+8, +6) voxels in XY
    mouse_drag(vp, point(tab, "xy", (30, 20, 12)), point(tab, "xy", (38, 26, 12)))
    assert tab.model.rows[0].tolist() == [1, 38, 26, 12, 1]
    # in XZ: move the added pick down to z = 16 (x stays)
    mouse_drag(vp, point(tab, "xz", (50, 10, 12)), point(tab, "xz", (50, 10, 16)))
    assert tab.model.rows[2, 1:4].tolist() == [50, 10, 16]

    # right-click on the second particle (z = 8, seen as a smaller circle on z = 12) deletes it
    mouse_click(vp, point(tab, "xy", (12, 36, 12)), Qt.RightButton)
    assert len(tab.model) == 2
    assert sorted(tab.model.classes.tolist()) == [1, 2]
    # a right-click on empty space deletes nothing
    mouse_click(vp, point(tab, "xy", (5, 5, 12)), Qt.RightButton)
    assert len(tab.model) == 2

    # Ctrl+Z brings the deleted pick back; Ctrl+Z again undoes the whole XZ drag
    tab.views.setFocus()
    qtbot.keyClick(tab.views, Qt.Key_Z, Qt.ControlModifier)
    assert len(tab.model) == 3 and tab.model.rows[1].tolist() == [2, 12, 36, 8, 1]
    qtbot.keyClick(tab.views, Qt.Key_Z, Qt.ControlModifier)
    assert tab.model.rows[2, 1:4].tolist() == [50, 10, 12]
    # Ctrl+Shift+Z redoes the drag, the Redo button the deletion
    qtbot.keyClick(tab.views, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert tab.model.rows[2, 1:4].tolist() == [50, 10, 16]
    qtbot.mouseClick(tab.redo_button, Qt.LeftButton)
    assert len(tab.model) == 2

    qtbot.mouseClick(tab.save_button, Qt.LeftButton)
    assert rows_of(data / "tomo.coords") == [(1, 38.0, 26.0, 12.0), (2, 50.0, 10.0, 16.0)]
    lines = (data / "tomo.coords").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2"]
    assert not tab.model.dirty and not window.windowTitle().endswith("*")

    # Save As another format exports the picks; the edited file stays the .coords
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(
        lambda *a, **k: (str(data / "export" / "picks"), "RELION 3 particles (*.star)")))
    qtbot.mouseClick(tab.save_as_button, Qt.LeftButton)
    star = list((data / "export").glob("*.star"))
    assert len(star) == 1
    (table,) = read_any(star[0])
    assert sorted(map(tuple, table.xyz.tolist())) == [(38, 26, 12), (50, 10, 16)]
    assert tab.model.path == data / "tomo.coords"


def test_table_selection_jumps_to_the_pick_and_delete_key_deletes(window, data, qtbot):
    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    index = tab.table.table_model.index(1, 2)
    qtbot.mouseClick(tab.table.viewport(), Qt.LeftButton,
                     pos=tab.table.visualRect(index).center())
    assert tab.views.position == [12, 36, 8]
    assert tab.views.selected == 1
    assert tab.views.views["xy"].highlight.count() == 1
    qtbot.keyClick(tab.table, Qt.Key_Delete)
    assert len(tab.model) == 1 and tab.model.classes.tolist() == [1]
    assert tab.save()
    assert rows_of(data / "tomo.coords") == [(1, 30.0, 20.0, 12.0)]


def test_keys_wheel_and_cursor_readout(window, data, qtbot):
    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc")
    assert tab.views.position == [32, 24, 12]
    tab.views.setFocus()
    qtbot.keyClick(tab.views, Qt.Key_Up)
    qtbot.keyClick(tab.views, Qt.Key_PageUp)
    assert tab.views.position[2] == 23 and tab.spins["z"].value() == 23
    qtbot.keyClick(tab.views, Qt.Key_PageDown)
    qtbot.keyClick(tab.views, Qt.Key_Down)
    assert tab.views.position[2] == 12
    # the wheel over XY steps z; over ZY it steps x
    vp = tab.views.viewport()
    for view, axis, delta, expected in (("xy", 2, 120, 13), ("zy", 0, -120, 31)):
        pos = QPointF(point(tab, view, tab.views.position))
        event = QWheelEvent(pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                            QPoint(0, delta), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase,
                            False)
        QApplication.sendEvent(vp, event)
        assert tab.views.position[axis] == expected
    mouse_move(vp, point(tab, "xy", (30, 20, 13)))
    value = float(tab.views.data[13, 20, 30])
    assert tab.readout.text() == f"(30, 20, 13) {value:.4g}"


def test_score_slider_and_class_diameter_change_the_circles(window, data, qtbot):
    tab = window.viewer_tab
    predicted = data / "pred.coords"
    write_picks(predicted, Picks([1, 1, 2], [(30, 20, 12), (40, 30, 12), (12, 36, 12)],
                                 scores=[0.9, 0.3, 0.6]))
    tab.open_tomogram(data / "tomo.mrc", picks=predicted)
    tab.spins["z"].setValue(12)
    circles = tab.views.views["xy"].circles
    assert circles.count() == 3
    tab.score_slider.setValue(50)
    assert circles.count() == 2 and tab.count_label.text() == "3 picks (2 shown)"
    tab.score_slider.setValue(95)
    assert circles.count() == 0
    tab.score_slider.setValue(0)
    assert tab.class_table.class_count() == 2
    radii = sorted(r for _x, _y, r, _pen in circles._circles)
    assert radii == pytest.approx([5.0, 5.0, 5.0])
    tab.class_table.cellWidget(1, 2).setValue(16.0)
    radii = sorted(r for _x, _y, r, _pen in circles._circles)
    assert radii == pytest.approx([5.0, 5.0, 8.0])


def test_masks_overlay_with_opacity(window, data):
    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc")
    labels = np.zeros(SHAPE, np.uint8)
    labels[10:14, 18:22, 28:32] = 1
    write_tomogram(data / "labels.mrc", labels)
    assert tab.open_mask("labels", data / "labels.mrc")
    item = tab.views.views["xy"].masks["labels"]
    assert item.isVisible() and item.opacity() == pytest.approx(0.4)
    tab.alpha_slider.setValue(70)
    assert item.opacity() == pytest.approx(0.7)
    tab.show_mask["labels"].setChecked(False)
    assert not item.isVisible()
    write_tomogram(data / "small.mrc", labels[:, :10])
    assert not tab.open_mask("occupancy", data / "small.mrc")


def test_loading_another_tomogram_asks_about_unsaved_picks(
        window, data, qtbot, dialogs, monkeypatch):
    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    tab.picking.setChecked(True)
    mouse_double_click(tab.views.viewport(), point(tab, "xy", (50, 10, 12)))
    assert tab.model.dirty
    monkeypatch.setattr(gui_dialogs, "choose_tomogram_file",
                        lambda *a, **k: str(data / "other.mrc"))

    dialogs.answers = [QMessageBox.Cancel]
    qtbot.mouseClick(tab.open_button, Qt.LeftButton)
    kind, title, text = dialogs.shown[-1]
    assert kind == "question" and title == "Unsaved picks"
    assert "tomo.mrc have unsaved changes (3 picks)" in text
    assert tab.tomogram.path.name == "tomo.mrc" and len(tab.model) == 3  # nothing changed

    dialogs.answers = [QMessageBox.Save]
    qtbot.mouseClick(tab.open_button, Qt.LeftButton)
    assert tab.tomogram.path.name == "other.mrc" and len(tab.model) == 0
    assert len(rows_of(data / "tomo.coords")) == 3  # saved before switching

    # Discard: the edit is dropped and its autosave removed
    tab.picking.setChecked(True)
    tab.document.autosave_delay_ms = 10
    mouse_double_click(tab.views.viewport(), point(tab, "xy", (20, 20, 12)))
    auto = autosave_path(data / "other.coords")
    qtbot.waitUntil(auto.exists, timeout=2000)
    monkeypatch.setattr(gui_dialogs, "choose_tomogram_file", lambda *a, **k: str(data / "tomo.mrc"))
    dialogs.answers = [QMessageBox.Discard]
    qtbot.mouseClick(tab.open_button, Qt.LeftButton)
    assert tab.tomogram.path.name == "tomo.mrc" and not tab.model.dirty
    assert not auto.exists() and not (data / "other.coords").exists()
    assert [k for k, _, _ in dialogs.shown] == ["question"] * 3


def test_closing_the_window_asks_about_unsaved_picks(qtbot, settings, dialogs, data):
    window = make_window(qtbot, settings)
    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    tab.model.remove([0])
    dialogs.answers = [QMessageBox.Cancel]
    assert not window.close()
    assert window.isVisible() and dialogs.shown[-1][1] == "Unsaved picks"
    dialogs.answers = [QMessageBox.Save]
    assert window.close()
    assert rows_of(data / "tomo.coords") == [(2, 12.0, 36.0, 8.0)]


def test_autosave_is_restored_on_the_next_start(qtbot, settings, dialogs, data):
    from gui.app import create_window

    window = make_window(qtbot, settings)
    tab = window.viewer_tab
    tab.document.autosave_delay_ms = 20
    tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    tab.picking.setChecked(True)
    mouse_double_click(tab.views.viewport(), point(tab, "xy", (50, 10, 12)))
    auto = autosave_path(data / "tomo.coords")
    qtbot.waitUntil(auto.exists, timeout=2000)
    assert rows_of(auto) == [(1, 30.0, 20.0, 12.0), (1, 50.0, 10.0, 12.0), (2, 12.0, 36.0, 8.0)]
    assert rows_of(data / "tomo.coords") == [(1, 30.0, 20.0, 12.0), (2, 12.0, 36.0, 8.0)]
    settings.sync()
    # the application ends without a chance to save (a crash, a power cut)
    window.hide()
    tab.model.undo_stack.setClean()

    dialogs.answers = [QMessageBox.Yes]
    again = create_window(settings=settings)
    qtbot.addWidget(again)
    assert again.viewer_tab.restore_last_session()
    restored = again.viewer_tab
    # one question: the answer to it restores the picks
    assert [t for _, t, _ in dialogs.shown] == ["Unsaved picks from the last session"]
    assert "tomo.mrc has unsaved picks" in dialogs.shown[-1][2]
    assert restored.tomogram.path == data / "tomo.mrc" and len(restored.model) == 3
    assert restored.model.dirty and again.windowTitle().endswith("*")
    assert restored.save()
    assert not auto.exists() and len(rows_of(data / "tomo.coords")) == 3


def test_bad_files_show_errors_and_the_tab_keeps_working(window, data, dialogs):
    tab = window.viewer_tab
    assert not tab.load_picks(data / "tomo.coords")  # no tomogram yet
    assert "Open the tomogram the picks belong to first" in dialogs.texts("critical")[-1]
    (data / "broken.mrc").write_bytes(b"not an MRC file")
    assert not tab.open_tomogram(data / "broken.mrc")
    assert "broken.mrc" in dialogs.texts("critical")[-1]
    assert tab.open_tomogram(data / "other.mrc")   # no picks beside it
    (data / "far.coords").write_text("1\t5\t5\t5\n2\t500\t5\t5\n")
    assert not tab.load_picks(data / "far.coords")
    assert "far.coords, line 2: pick at x=500" in dialogs.texts("critical")[-1]
    assert len(tab.model) == 0 and tab.model.path is None
    assert tab.load_picks(data / "tomo.coords") and len(tab.model) == 2


def test_an_unexpected_error_shows_a_dialog_and_autosaves_the_picks(
        window, data, dialogs, monkeypatch):
    import sys

    from gui.app import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # put back after the test
    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    tab.model.remove([0])
    hook = install_excepthook(window)
    assert sys.excepthook is hook
    try:
        raise ValueError("boom")
    except ValueError:
        hook(*sys.exc_info())
    kind, title, text = dialogs.shown[-1]
    assert (kind, title) == ("critical", "Unexpected error")
    assert text.startswith("ValueError: boom") and ".tomo.autosave.coords" in text
    assert rows_of(autosave_path(data / "tomo.coords")) == [(2, 12.0, 36.0, 8.0)]
    assert window.isVisible() and len(tab.model) == 1


def test_zoom_and_pan_keep_the_views_linked_and_ctrl_click_adds(window, data, qtbot):
    tab = window.viewer_tab
    tab.open_tomogram(data / "other.mrc")   # no picks beside it
    views = tab.views.views
    vp = tab.views.viewport()

    def linked():
        (xy_x, xy_y), (zy_x, zy_y), (xz_x, xz_y) = (views[n].vb.viewRange()
                                                    for n in ("xy", "zy", "xz"))
        assert xy_x == pytest.approx(xz_x, abs=1e-6)  # x shared by XY and XZ
        assert xy_y == pytest.approx(zy_y, abs=1e-6)  # y shared by XY and ZY
        return xy_x[1] - xy_x[0]

    width = linked()
    pos = QPointF(point(tab, "xy", (32, 24, 12)))
    event = QWheelEvent(pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, 240), Qt.NoButton, Qt.ControlModifier, Qt.NoScrollPhase,
                        False)
    QApplication.sendEvent(vp, event)
    zoomed = linked()
    assert zoomed < 0.9 * width
    assert tab.views.position[2] == 12  # Ctrl+wheel zooms, it does not change the slice
    before = views["xy"].vb.viewRange()[0][0]
    mouse_drag(vp, point(tab, "xy", (20, 10, 12)), point(tab, "xy", (30, 10, 12)))
    assert views["xy"].vb.viewRange()[0][0] == pytest.approx(before - 10, abs=1.0)
    linked()
    assert len(tab.model) == 0  # panning adds nothing

    tab.picking.setChecked(True)
    mouse_click(vp, point(tab, "xy", (40, 30, 12)), modifiers=Qt.ControlModifier)
    assert tab.model.rows.tolist() == [[1, 40, 30, 12, 1]]


class CountingVolume:
    """A (z, y, x) array that records the view each read is for (see ``kind``)."""

    def __init__(self, data):
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.ndim = data.ndim
        self.reads = []  # (kind, number of values)

    @staticmethod
    def kind(key) -> str:
        if isinstance(key, (int, np.integer)):
            return "xy"
        if not isinstance(key, tuple) or len(key) != 3:
            return "other"
        z, y, x = (isinstance(k, (int, np.integer)) for k in key)
        return {(False, False, True): "zy", (False, True, False): "xz",
                (True, False, False): "sample", (True, True, True): "voxel"}.get((z, y, x),
                                                                                "other")

    def __getitem__(self, key):
        out = self.data[key]
        self.reads.append((self.kind(key), int(np.size(out))))
        return out

    def count(self, kind) -> int:
        return sum(1 for k, _ in self.reads if k == kind)


def test_opening_and_scrolling_read_only_the_slices_shown(window, data, qtbot, monkeypatch):
    """A big memory-mapped tomogram opens fast and scrolls smoothly only if the viewer reads
    each displayed slice once (not twice, not the whole volume) and the XY slice first."""
    import gui.viewer_document as viewer_module
    from deepetpicker.io.tomogram import Tomogram, load_tomogram

    volumes = []

    def counting_load(path, mmap=True):
        tomo = load_tomogram(path, mmap=mmap)
        volumes.append(CountingVolume(tomo.data))
        return Tomogram(volumes[-1], tomo.voxel_size, tomo.path)

    monkeypatch.setattr(viewer_module, "load_tomogram", counting_load)
    monkeypatch.setattr(gui_dialogs, "choose_tomogram_file", lambda *a, **k: str(data / "tomo.mrc"))
    tab = window.viewer_tab
    qtbot.mouseClick(tab.open_button, Qt.LeftButton)
    (vol,) = volumes
    nz, ny, nx = SHAPE
    views = tab.views.views
    # when the click returns, the XY slice is drawn and nothing but it and a sample was read
    assert views["xy"].image.image is not None
    assert views["zy"].image.image is None and views["xz"].image.image is None
    assert {k for k, _ in vol.reads} == {"sample", "xy"} and vol.count("xy") == 1
    assert 0 < sum(n for k, n in vol.reads if k == "sample") <= 9 * ny * nx
    # ZY and XZ follow from the event loop: each slice read exactly once, at full size
    qtbot.waitUntil(lambda: views["zy"].image.image is not None
                    and views["xz"].image.image is not None, timeout=2000)
    slices = [(k, n) for k, n in vol.reads if k != "sample"]
    assert sorted(slices) == [("xy", ny * nx), ("xz", nz * nx), ("zy", nz * ny)]
    assert views["zy"].image.image.shape == (ny, nz)
    # the picture uses the auto contrast from the start
    lo, hi = tab.views.display["vmin"], tab.views.display["vmax"]
    assert (lo, hi) == pytest.approx((tab.vmin.value(), tab.vmax.value()), abs=1e-3)
    assert lo < 0 < hi

    # a z step reads the one XY slice, an x step the one ZY slice
    vol.reads.clear()
    tab.views.setFocus()
    qtbot.keyClick(tab.views, Qt.Key_Up)
    assert vol.reads == [("xy", ny * nx)]
    vol.reads.clear()
    tab.sliders["x"].setFocus()
    qtbot.keyClick(tab.sliders["x"], Qt.Key_Right)
    assert tab.views.position[0] == nx // 2 + 1 and vol.reads == [("zy", nz * ny)]
    QApplication.processEvents()
    assert vol.count("zy") == 1  # nothing left over from opening is drawn again


def _circle_colours(tab):
    """{class: set of pen colours} of the circles drawn on the three views."""
    out = {}
    for view in tab.views.views.values():
        for index, (_x, _y, _r, pen) in zip(view.pick_index, view.circles._circles):
            cls = int(tab.model.classes[index])
            out.setdefault(cls, set()).add(pen.color().name())
    return out


def test_changing_a_class_colour_recolours_its_circles_and_is_kept(window, data, qtbot,
                                                                    monkeypatch):
    from PyQt5.QtGui import QColor
    from PyQt5.QtWidgets import QColorDialog

    from deepetpicker.render import PALETTE

    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    tab.spins["z"].setValue(12)  # both particles cut this slice
    assert _circle_colours(tab) == {1: {PALETTE[0]}, 2: {PALETTE[1]}}
    asked = []

    def get_color(initial, parent, title, *args):
        asked.append((initial.name(), title))
        return QColor(answer)

    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(get_color))
    answer = "#123456"
    button = tab.class_table.cellWidget(1, 1)
    qtbot.mouseClick(button, Qt.LeftButton)
    assert asked == [(PALETTE[1], "Colour of class 2")]
    assert _circle_colours(tab) == {1: {PALETTE[0]}, 2: {"#123456"}}
    assert button.text() == "#123456"
    colour_cell = tab.table.table_model.index(1, 1)
    assert tab.table.table_model.data(colour_cell, Qt.ForegroundRole).name() == "#123456"

    # kept: when the dialog is cancelled, on other slices, with more classes, for new picks
    answer = QColor()  # what getColor returns on Cancel
    qtbot.mouseClick(button, Qt.LeftButton)
    assert asked[-1][0] == "#123456" and tab.styles.colour(2) == "#123456"
    tab.views.select_pick(1, jump=True)  # the class-2 particle: circles on all three views
    assert _circle_colours(tab)[2] == {"#123456"}
    assert sum(int(tab.model.classes[i]) == 2 for v in tab.views.views.values()
               for i in v.pick_index) == 3
    tab.class_count.setValue(3)
    assert tab.class_table.cellWidget(1, 1).text() == "#123456"
    tab.picking.setChecked(True)
    tab.current_class.setValue(2)
    mouse_double_click(tab.views.viewport(), point(tab, "xy", (50, 10, 8)))
    assert len(tab.model) == 3 and _circle_colours(tab)[2] == {"#123456"}


def test_equalise_gaussian_and_invert_change_the_displayed_slices(window, data, qtbot):
    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc")
    tab.views.draw_pending()
    tab.spins["z"].setValue(12)
    xy = tab.views.views["xy"].image
    zy = tab.views.views["zy"].image

    def shown():
        return xy.image.copy(), zy.image.copy()

    plain_xy, plain_zy = shown()
    inside, outside = (20, 30), (2, 2)  # (row y, column x): in the particle, background
    assert plain_xy[inside] > plain_xy[outside]

    qtbot.mouseClick(tab.invert, Qt.LeftButton)
    inv_xy, inv_zy = shown()
    assert inv_xy[inside] < inv_xy[outside]  # the two values swap order
    assert inv_xy == pytest.approx(1.0 - plain_xy) and inv_zy == pytest.approx(1.0 - plain_zy)
    qtbot.mouseClick(tab.invert, Qt.LeftButton)
    assert np.array_equal(xy.image, plain_xy)

    qtbot.mouseClick(tab.equalize, Qt.LeftButton)
    eq_xy, eq_zy = shown()
    # equalised: the values spread evenly over [0, 1] (quartiles near 1/4 and 3/4, where the
    # windowed noise had them close together), the order of the pixels kept
    assert np.percentile(eq_xy, [25, 75]) == pytest.approx([0.25, 0.75], abs=0.04)
    assert np.subtract(*np.percentile(plain_xy, [75, 25])) < 0.4
    assert eq_xy[inside] > eq_xy[outside] and not np.allclose(eq_zy, plain_zy)
    qtbot.mouseClick(tab.equalize, Qt.LeftButton)

    tab.sigma.setValue(2.0)
    smooth_xy, _ = shown()
    # a Gaussian filter removes most of the noise: neighbouring pixels become alike
    rough = np.abs(np.diff(plain_xy, axis=1)).mean()
    assert np.abs(np.diff(smooth_xy, axis=1)).mean() < 0.3 * rough
    assert smooth_xy[inside] > smooth_xy[outside]
    tab.sigma.setValue(0.0)
    assert np.array_equal(xy.image, plain_xy)


def _save_as(tab, monkeypatch, path, label):
    """Save As through the dialog: the file ``path`` with the filter of format ``label``."""
    from gui.picks_model import SAVE_FILTERS

    (text,) = [t for t, _name, _suffix in SAVE_FILTERS if t.startswith(label + " (")]
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(path), text)))
    return tab.save_as()


def _file_hashes(folder, but=()):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if p.is_file() and p.name not in but
            and not p.name.startswith(".deepetpicker-outputs")}  # the folder's output record


@pytest.mark.parametrize("label", ["RELION 3 particles", "RELION 4 tomography particles",
                                   "RELION 5 tomography particles"])
def test_save_as_relion_writes_the_file_named_and_nothing_else(window, data, monkeypatch,
                                                               label):
    tab = window.viewer_tab
    assert tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    assert _save_as(tab, monkeypatch, data / "edited.star", label)
    assert window.statusBar().currentMessage() == "Saved 2 picks to edited.star"
    first = _file_hashes(data)
    assert tab.open_tomogram(data / "other.mrc")
    tab.model.add(1, 5, 6, 7)
    assert _save_as(tab, monkeypatch, data / "other_relion.star", label)
    assert window.statusBar().currentMessage() == "Saved 1 pick to other_relion.star"
    assert _file_hashes(data, but=("other_relion.star",)) == first  # nothing else changed
    (mine,) = read_any(data / "edited.star", shape=SHAPE, voxel_size=10.0)
    assert sorted(map(tuple, mine.xyz.tolist())) == [(12, 36, 8), (30, 20, 12)]
    (theirs,) = read_any(data / "other_relion.star", shape=SHAPE, voxel_size=10.0)
    assert theirs.xyz.tolist() == [[5, 6, 7]]


@pytest.mark.parametrize("label", ["RELION 4 tomography particles",
                                   "RELION 5 tomography particles"])
def test_a_relion_export_loads_back_on_its_tomogram(window, data, monkeypatch, dialogs, label):
    tab = window.viewer_tab
    assert tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    tab.model.add(2, 40.5, 7.25, 3)
    expected = tab.model.rows.copy()
    assert _save_as(tab, monkeypatch, data / "back.star", label)
    tab.model.undo_stack.setClean()
    assert tab.load_picks(data / "back.star"), dialogs.texts()
    assert tab.model.path == data / "back.star"
    assert np.abs(tab.model.rows[:, 1:4] - expected[:, 1:4]).max() < 1e-3
    assert tab.model.classes.tolist() == expected[:, 0].astype(int).tolist()
    # and at start-up, the tomogram with its picks (`--tomogram ... --picks ...`)
    assert tab.open_tomogram(data / "tomo.mrc", picks=data / "back.star")
    assert np.abs(tab.model.rows[:, 1:4] - expected[:, 1:4]).max() < 1e-3
    assert not dialogs.texts("critical")


def _ring(tab):
    """The picks drawn with the dashed selection ring, on any view."""
    return {int(view.pick_index[np.nonzero(view.pick_index == tab.views.selected)[0][0]])
            for view in tab.views.views.values() if view.highlight.count()}


def test_the_selection_never_goes_stale(window, data, qtbot):
    tab = window.viewer_tab
    many = data / "many.coords"
    write_picks(many, Picks([1] * 10, [(5 + 5 * i, 10 + 3 * i, 12) for i in range(10)],
                            tomo_name="tomo"))
    tab.open_tomogram(data / "tomo.mrc", picks=many)

    def click_row(row):
        index = tab.table.table_model.index(row, 2)
        tab.table.scrollTo(index)
        qtbot.mouseClick(tab.table.viewport(), Qt.LeftButton,
                         pos=tab.table.visualRect(index).center())

    click_row(7)
    assert tab.views.selected == 7 and _ring(tab) == {7} and tab.table.selected_rows() == [7]
    # a move keeps the same pick selected in the table and on the views
    tab.model.move(7, 41, 31, 12)
    assert tab.table.selected_rows() == [7] and _ring(tab) == {7}
    qtbot.keyClick(tab.table, Qt.Key_Delete)
    assert len(tab.model) == 9
    # the deleted pick's ring does not move on to the pick that took its row
    assert tab.views.selected == -1 and _ring(tab) == set()
    assert tab.table.selected_rows() == []
    qtbot.mouseClick(tab.delete_button, Qt.LeftButton)
    assert len(tab.model) == 9
    assert window.statusBar().currentMessage().startswith("No pick selected to delete")

    click_row(2)
    assert _ring(tab) == {2}
    tab.model.undo_stack.undo()  # the deleted pick comes back: rows renumbered
    assert tab.views.selected == -1 and tab.table.selected_rows() == []

    # loading other picks, or opening another tomogram, drops the selection
    click_row(1)
    assert _ring(tab) == {1}
    tab.model.undo_stack.setClean()
    assert tab.load_picks(data / "tomo.coords")
    assert tab.views.selected == -1 and _ring(tab) == set() and tab.table.selected_rows() == []
    click_row(1)
    assert _ring(tab) == {1}
    assert tab.open_tomogram(data / "other.mrc")
    assert tab.views.selected == -1 and _ring(tab) == set()


def test_auto_contrast_follows_the_gaussian_filter(window, data, volume):
    from scipy.ndimage import gaussian_filter

    tab = window.viewer_tab
    tab.open_tomogram(data / "tomo.mrc")
    assert tab.auto_contrast.isChecked()
    z = tab.views.position[2]
    tab.sigma.setValue(1.5)
    filtered = gaussian_filter(volume[z].astype(np.float32), 1.5, mode="nearest")
    lo, hi = tab.views.display["vmin"], tab.views.display["vmax"]
    # the levels lie within the filtered slice's values and span most of them
    assert filtered.min() <= lo < hi <= filtered.max()
    p1, p99 = np.percentile(filtered, [1, 99])
    assert hi - lo >= 0.8 * (p99 - p1)
    assert (lo, hi) == pytest.approx((tab.vmin.value(), tab.vmax.value()), abs=1e-3)
    shown = tab.views.views["xy"].image.image
    # not a flat grey: black to white, and the smoothed background keeps its shades
    assert shown.max() - shown.min() > 0.9
    assert np.percentile(shown, 95) - np.percentile(shown, 5) > 0.1
    # the filter off again: the tomogram's own limits come back
    tab.sigma.setValue(0.0)
    assert tab.views.display["vmin"] < filtered.min()


def test_saving_over_a_prediction_updates_the_count_in_its_sidecar(window, data):
    """Ctrl+S on predicted picks corrected by hand: the sidecar's counts are those saved."""
    from deepetpicker.io.picks import read_sidecar, write_sidecar

    predicted = data / "predicted.coords"
    write_picks(predicted, Picks([1, 2], [(c[2], c[1], c[0]) for c in CENTRES]))
    write_sidecar(predicted, {"picks": "predicted.coords", "counts": {"1": 1, "2": 1},
                              "diameters": [8, 8]})
    tab = window.viewer_tab
    assert tab.open_tomogram(data / "tomo.mrc", picks=predicted)
    tab.model.add(2, 5.0, 6.0, 7.0)
    tab.save_action.trigger()
    assert not tab.model.dirty
    assert len(read_picks(predicted)) == 3
    assert read_sidecar(predicted)["counts"] == {"1": 1, "2": 2}


def menu_actions(window):
    """{menu title: {action text: action}} of the window's menu bar (no '&' marks)."""
    out = {}
    for top in window.menuBar().actions():
        out[top.text().replace("&", "")] = {a.text().replace("&", ""): a
                                            for a in top.menu().actions() if a.text()}
    return out


def test_the_menu_bar_runs_the_viewer_commands(window, data, dialogs, monkeypatch):
    """File, Edit, View and Help hold the viewer's commands and do what its buttons do."""
    import deepetpicker

    menus = menu_actions(window)
    assert list(menus) == ["File", "Edit", "View", "Help"]
    assert list(menus["File"]) == ["Open tomogram...", "Load picks...", "Save picks",
                                   "Save picks as...", "Quit"]
    assert menus["File"]["Quit"].shortcut().toString() == "Ctrl+Q"
    assert menus["File"]["Open tomogram..."].shortcut().toString() == "Ctrl+O"
    assert list(menus["Edit"]) == ["Undo", "Redo", "Delete selected picks"]
    assert list(menus["View"]) == ["Reset zoom"]
    tab = window.viewer_tab
    assert not menus["File"]["Save picks"].isEnabled()

    window.tabs.setCurrentIndex(0)
    monkeypatch.setattr(gui_dialogs, "choose_tomogram_file",
                        lambda *a, **k: str(data / "other.mrc"))
    menus["File"]["Open tomogram..."].trigger()
    assert tab.tomogram.path.name == "other.mrc" and window.tabs.currentWidget() is tab
    assert menus["File"]["Save picks"].isEnabled()
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(data / "tomo.coords"), "")))
    menus["File"]["Load picks..."].trigger()
    assert len(tab.model) == 2
    tab.table.selectRow(0)
    menus["Edit"]["Delete selected picks"].trigger()
    assert len(tab.model) == 1
    menus["Edit"]["Undo"].trigger()
    assert len(tab.model) == 2
    menus["Edit"]["Redo"].trigger()
    assert len(tab.model) == 1
    menus["File"]["Save picks"].trigger()
    assert len(read_picks(data / "tomo.coords")) == 1

    view = tab.views.views["xy"].vb
    full = view.viewRange()
    view.scaleBy((0.5, 0.5))
    assert view.viewRange() != full
    menus["View"]["Reset zoom"].trigger()
    assert np.allclose(view.viewRange(), full)

    menus["Help"]["About DeepETPicker"].trigger()
    assert deepetpicker.__version__ in dialogs.texts("information")[-1]
    menus["File"]["Quit"].trigger()
    assert not window.isVisible()


def test_views_have_a_gap_the_readout_follows_and_the_table_shows_ten_rows(window, data,
                                                                           volume):
    """Zoomed views keep a visible gap; the voxel read-out follows a slice change and clears
    when the mouse leaves; at 1360 x 860 the picks table shows about ten rows."""
    from PyQt5.QtCore import QEvent

    tab = window.viewer_tab
    assert tab.open_tomogram(data / "tomo.mrc", picks=data / "tomo.coords")
    QApplication.processEvents()
    xy, zy = tab.views.views["xy"].vb, tab.views.views["zy"].vb
    assert zy.sceneBoundingRect().left() - xy.sceneBoundingRect().right() >= 5
    assert xy.sceneBoundingRect().bottom() < tab.views.views["xz"].vb.sceneBoundingRect().top()

    tab.spins["z"].setValue(12)
    mouse_move(tab.views.viewport(), point(tab, "xy", (30, 20, 12)))
    assert tab.readout.text() == f"(30, 20, 12) {float(volume[12, 20, 30]):.4g}"
    tab.spins["z"].setValue(3)
    assert tab.readout.text() == f"(30, 20, 3) {float(volume[3, 20, 30]):.4g}"
    QApplication.sendEvent(tab.views, QEvent(QEvent.Leave))
    assert tab.readout.text() == "(x, y, z) value"

    rows = tab.table.viewport().height() / tab.table.verticalHeader().defaultSectionSize()
    assert rows >= 9


def test_the_empty_viewer_says_how_to_open_a_tomogram(window, data):
    """Until a tomogram is open the views show how to open one, and no crosshair."""
    tab = window.viewer_tab
    hint = tab.views.hint
    assert hint.isVisible() and "Open a tomogram" in hint.text() and "Ctrl+O" in hint.text()
    assert hint.geometry().center() == tab.views.rect().center()
    assert not any(v.vline.isVisible() for v in tab.views.views.values())
    assert tab.open_tomogram(data / "other.mrc")
    assert not hint.isVisible()
    assert all(v.vline.isVisible() and v.hline.isVisible() for v in tab.views.views.values())


def test_opening_a_tomogram_loads_the_picks_file_of_its_name(window, data, dialogs):
    """NAME.coords beside NAME.mrc opens with it (the status bar says so); unsaved picks of
    the tomogram open before are never replaced without asking."""
    tab = window.viewer_tab
    assert tab.open_tomogram(data / "other.mrc")
    tab.model.add(1, 5.0, 6.0, 7.0)
    assert not tab.open_tomogram(data / "tomo.mrc")     # the question is answered Cancel
    assert dialogs.shown[-1][1] == "Unsaved picks" and tab.tomogram.path.name == "other.mrc"
    assert len(tab.model) == 1
    tab.document.discard()
    tab.model.undo_stack.setClean()
    assert tab.open_tomogram(data / "tomo.mrc")
    assert len(tab.model) == 2 and tab.model.path == data / "tomo.coords"
    assert not tab.model.dirty and window.windowTitle().endswith("tomo.mrc - tomo.coords")
    assert window.statusBar().currentMessage() == ("Loaded 2 picks from tomo.coords, found "
                                                   "beside the tomogram")
