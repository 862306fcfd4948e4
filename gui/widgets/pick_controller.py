"""Manual picking on the slice views: what a click or a drag on a view does to the picks.

:class:`OrthoViews` draws and turns its mouse events into voxel coordinates; the
:class:`PickController` it hands them to decides what they mean:

- left click: move the crosshair there; a click on a pick selects it, elsewhere clears the
  selection;
- with picking enabled: double-click or Ctrl + click adds a pick of the current class,
  right-click on a pick deletes it, dragging a pick moves it (one undo step per drag).

Which pick is under the cursor is :func:`deepetpicker.render.pick_at` on the circles the
view shows, so only picks that can be seen can be hit.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from PyQt5.QtCore import QObject, Qt, pyqtSignal

from deepetpicker.render.slices import pick_at, view_axes, volume_to_slice
from gui.picks_model import PicksModel, new_drag_id


class PickController(QObject):
    """Edits ``model`` from the mouse events of ``views`` (an :class:`OrthoViews`)."""

    #: index of the pick selected by a click (-1: none)
    pick_selected = pyqtSignal(int)

    def __init__(self, views, model: PicksModel, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.views = views
        self.model = model
        self.picking = False
        self.current_class = 1
        self._drag: Optional[tuple[int, int, np.ndarray]] = None  # index, drag id, offset
        views.mouse_handler = self

    def pick_under(self, view: str, xyz: np.ndarray) -> Optional[int]:
        """Index of the pick whose circle on ``view`` contains the point ``xyz`` (x, y, z),
        the nearest centre first; None when there is none."""
        index, centres, radii = self.views.drawn_picks(view)
        h, v, _ = volume_to_slice(view, xyz)
        hit = pick_at((h, v), centres, radii)
        return None if hit is None else int(index[hit])

    def _select(self, index: int) -> None:
        self.views.select_pick(index)
        self.pick_selected.emit(index)

    def click(self, view: str, xyz: np.ndarray, button: Qt.MouseButton, double: bool = False,
              modifiers: Qt.KeyboardModifiers = Qt.NoModifier) -> bool:
        """A click at voxel point ``xyz`` (inside the volume) of ``view``; True when used."""
        adding = double or bool(modifiers & Qt.ControlModifier)
        if button == Qt.LeftButton and self.picking and adding:
            x, y, z = np.rint(xyz)
            self._select(self.model.add(self.current_class, x, y, z))
            return True
        if button == Qt.LeftButton:
            hit = self.pick_under(view, xyz)
            x, y, z = np.rint(xyz).astype(int)
            self.views.set_position(x, y, z)
            if hit is not None or self.views.selected != -1:
                self._select(-1 if hit is None else hit)
            return True
        if button == Qt.RightButton and self.picking:
            hit = self.pick_under(view, xyz)
            if hit is not None:
                self.model.remove([hit])
                self._select(-1)
                return True
        return False

    def drag(self, view: str, button: Qt.MouseButton, start: np.ndarray, xyz: np.ndarray,
             is_start: bool, is_finish: bool) -> bool:
        """One step of a drag on ``view`` that began at ``start`` and is now at ``xyz``
        (voxel points); moves a pick when the drag began on one with picking enabled.
        True when used (else the view pans)."""
        if button != Qt.LeftButton:
            return False
        if is_start:
            self._drag = None
            if not self.picking:
                return False
            hit = self.pick_under(view, start)
            if hit is None:
                return False
            self._drag = (hit, new_drag_id(), self.model.xyz[hit] - start)
            self._select(hit)
        if self._drag is None:
            return False
        index, drag_id, offset = self._drag
        h, v, _ = view_axes(view)
        target = self.model.xyz[index].copy()
        now = np.asarray(xyz, dtype=np.float64) + offset
        target[h], target[v] = np.rint(now[h]), np.rint(now[v])
        self.model.move(index, *target, drag_id=drag_id)
        if is_finish:
            self._drag = None
        return True
