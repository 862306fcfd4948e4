"""What clicks and drags on the slice views do to the picks, given in voxel coordinates
(the pixel-level path through real mouse events is tested in test_gui_viewer.py)."""

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from gui.display import ClassStyles
from gui.picks_model import PicksModel
from gui.widgets.ortho_views import OrthoViews
from gui.widgets.pick_controller import PickController

from gui_fixtures import mouse_double_click

SHAPE = (20, 30, 40)  # z, y, x; the crosshair starts at (20, 15, 10)


@pytest.fixture
def setup(qtbot):
    model = PicksModel()
    model.clear("tomo", shape=SHAPE)
    views = OrthoViews(model, ClassStyles(diameter=10.0))
    qtbot.addWidget(views)
    views.set_volume(np.zeros(SHAPE, np.float32))
    views.draw_pending()  # nothing left for a timer once the test is over
    picker = PickController(views, model)
    selected = []
    picker.pick_selected.connect(selected.append)
    return model, views, picker, selected


def at(x, y, z):
    return np.array([x, y, z], dtype=np.float64)


def test_the_controller_receives_the_views_mouse(setup, qtbot):
    model, views, picker, selected = setup
    assert views.mouse_handler is picker
    views.resize(700, 700)
    views.show()
    qtbot.waitExposed(views)
    views.draw_pending()
    picker.picking = True
    picker.current_class = 2
    z = views.position[2]                      # the xy view shows the crosshair's slice
    mouse_double_click(views.viewport(), views.widget_point("xy", (5, 7, z)))
    assert model.rows.tolist() == [[2, 5, 7, z, 1]] and selected == [0]


def test_without_picking_a_double_click_only_moves_the_crosshair(setup):
    model, views, picker, selected = setup
    assert picker.click("xy", at(5.4, 6.6, 10), Qt.LeftButton, double=True)
    assert views.position == [5, 7, 10] and len(model) == 0 and selected == []
    assert not picker.click("xy", at(5, 6, 10), Qt.RightButton)


def test_double_click_or_ctrl_click_adds_a_pick_of_the_current_class(setup):
    model, views, picker, selected = setup
    picker.picking = True
    picker.current_class = 3
    assert picker.click("xy", at(5.4, 6.6, 10), Qt.LeftButton, double=True)
    assert picker.click("xz", at(30.2, 15, 3.7), Qt.LeftButton, modifiers=Qt.ControlModifier)
    assert model.rows.tolist() == [[3, 5, 7, 10, 1], [3, 30, 15, 4, 1]]
    assert selected == [0, 1] and views.selected == 1
    assert views.position == [20, 15, 10]  # adding does not move the crosshair


def test_a_click_selects_the_nearest_pick_under_it_and_elsewhere_clears(setup):
    model, views, picker, selected = setup
    model.add(1, 10, 10, 10)
    model.add(2, 14, 10, 12)
    model.add(1, 30, 20, 19)  # radius 5 does not reach the slice z = 10
    assert picker.pick_under("xy", at(13, 10, 10)) == 1
    assert picker.pick_under("xy", at(11, 10, 10)) == 0
    assert picker.pick_under("xy", at(30, 20, 10)) is None
    # on the ZY view (slice x = 20) the points are (z, y): no pick reaches x = 20
    assert picker.pick_under("zy", at(20, 10, 10)) is None
    views.set_position(14, 15, 10)
    assert picker.pick_under("zy", at(14, 10, 12)) == 1  # (z, y) = (12, 10)
    assert picker.pick_under("zy", at(14, 10, 9.5)) == 0
    assert picker.click("xy", at(11, 10, 10), Qt.LeftButton)
    assert selected == [0] and views.selected == 0 and views.position == [11, 10, 10]
    assert picker.click("xy", at(35, 25, 10), Qt.LeftButton)
    assert selected == [0, -1] and views.selected == -1 and views.position == [35, 25, 10]
    picker.click("xy", at(36, 25, 10), Qt.LeftButton)  # nothing to clear: no signal
    assert selected == [0, -1]


def test_right_click_deletes_the_pick_under_it_only_when_picking(setup):
    model, views, picker, selected = setup
    model.add(1, 10, 10, 10)
    model.add(2, 30, 20, 10)
    assert not picker.click("xy", at(30, 20, 10), Qt.RightButton)
    assert len(model) == 2
    picker.picking = True
    assert not picker.click("xy", at(20, 5, 10), Qt.RightButton)  # on no pick
    assert picker.click("xy", at(31, 21, 10), Qt.RightButton)
    assert model.rows.tolist() == [[1, 10, 10, 10, 1]] and selected == [-1]


def test_dragging_a_pick_moves_it_in_the_views_plane_as_one_undo_step(setup):
    model, views, picker, selected = setup
    model.add(1, 10, 10, 10)
    steps = model.undo_stack.count()
    # picking off: the view pans instead
    assert not picker.drag("xy", Qt.LeftButton, at(11, 10, 10), at(12, 10, 10), True, False)
    picker.picking = True
    # grabbed one voxel right of the centre: the offset is kept while dragging
    assert picker.drag("xy", Qt.LeftButton, at(11, 10, 10), at(13.2, 12, 10), True, False)
    assert model.xyz[0].tolist() == [12, 12, 10] and selected == [0]
    assert picker.drag("xy", Qt.LeftButton, at(11, 10, 10), at(19, 14.6, 10), False, False)
    assert picker.drag("xy", Qt.LeftButton, at(11, 10, 10), at(21, 16, 10), False, True)
    assert model.xyz[0].tolist() == [20, 16, 10]
    assert model.undo_stack.count() == steps + 1
    model.undo_stack.undo()
    assert model.xyz[0].tolist() == [10, 10, 10]
    # a drag on XZ changes x and z, never y
    views.set_position(10, 10, 10)
    assert picker.drag("xz", Qt.LeftButton, at(10, 10, 10), at(10, 10, 14), True, True)
    assert model.xyz[0].tolist() == [10, 10, 14]
    # a drag from empty space or with the right button is not a move
    assert not picker.drag("xy", Qt.LeftButton, at(35, 25, 10), at(36, 25, 10), True, False)
    assert not picker.drag("xy", Qt.LeftButton, at(35, 25, 10), at(37, 25, 10), False, True)
    assert not picker.drag("xy", Qt.RightButton, at(10, 10, 10), at(12, 10, 10), True, False)
    assert model.xyz[0].tolist() == [10, 10, 14]
