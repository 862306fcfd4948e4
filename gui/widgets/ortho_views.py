"""Three orthogonal slice views (XY, ZY, XZ) of a tomogram with picks, masks and crosshairs.

Layout (XY and ZY share y, XY and XZ share x, as in IMOD's slicer)::

    XY | ZY
    ---+
    XZ

Only the displayed slices are read from the (memory-mapped) volume, and a view is redrawn
only when its own slice or a display setting changes. A new volume shows its XY slice at
once; the ZY and XZ slices follow a moment later (a ZY slice needs one value from every page
of the file, which takes seconds when the file is not in the page cache), so the first slice
is on screen without waiting for the whole file. Mouse and keys:

- wheel: next / previous slice of that view; Ctrl + wheel zooms; drag on empty space pans;
- Up / Down, PageUp / PageDown: z by 1 / 10 (in any view);
- clicks and drags go, as voxel coordinates, to the ``mouse_handler`` (a
  :class:`gui.widgets.pick_controller.PickController`: crosshair, selection and picking).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QPen
from PyQt5.QtWidgets import QLabel

from deepetpicker.render.slices import (
    VIEW_AXES,
    VIEWS,
    circle_sections,
    inside_volume,
    slice_to_volume,
    view_axes,
    volume_to_slice,
)
from gui.display import ClassStyles, mask_rgba, render_slice, slice_image
from gui.picks_model import PicksModel

if TYPE_CHECKING:
    from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent, MouseDragEvent

#: shown in the empty views
EMPTY_HINT = "Open a tomogram (File > Open tomogram... or Ctrl+O)"
#: the overlays, bottom to top: a region of interest (``mask``, non-zero = inside, as
#: prediction's ``mask`` reads it), weak labels (class ids) and occupancy (instance ids)
MASK_KINDS = ("mask", "labels", "occupancy")
#: the colour of the inside of a region of interest
REGION_COLOUR = (0, 200, 255)


class CirclesItem(pg.GraphicsObject):
    """Circles drawn with cosmetic pens (line width in screen pixels); takes no mouse input."""

    def __init__(self) -> None:
        super().__init__()
        self._circles: list[tuple[float, float, float, QPen]] = []
        self._rect = QRectF()

    def set_circles(self, centres: np.ndarray, radii: np.ndarray, colours: list,
                    width: float, style: Qt.PenStyle = Qt.SolidLine) -> None:
        """Centres (n, 2) in view coordinates, radii (n,), one colour (str/QColor) each."""
        self.prepareGeometryChange()
        pens: dict = {}
        circles = []
        for (cx, cy), r, colour in zip(np.asarray(centres).reshape(-1, 2), radii, colours):
            pen = pens.get(colour)
            if pen is None:
                pen = QPen(QColor(colour))
                pen.setCosmetic(True)
                pen.setWidthF(float(width))
                pen.setStyle(style)
                pens[colour] = pen
            circles.append((float(cx), float(cy), float(r), pen))
        self._circles = circles
        if circles:
            arr = np.array([c[:3] for c in circles])
            x0, y0 = (arr[:, :2] - arr[:, 2:3]).min(axis=0)
            x1, y1 = (arr[:, :2] + arr[:, 2:3]).max(axis=0)
            self._rect = QRectF(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2)
        else:
            self._rect = QRectF()
        self.update()

    def count(self) -> int:
        return len(self._circles)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self._rect

    def paint(self, painter, *args) -> None:
        painter.setRenderHint(painter.Antialiasing, True)
        for cx, cy, r, pen in self._circles:
            painter.setPen(pen)
            painter.drawEllipse(QPointF(cx, cy), r, r)


class SliceViewBox(pg.ViewBox):
    """A ViewBox that lets its owner handle clicks, drags and the wheel before it pans/zooms."""

    def __init__(self, owner: "OrthoViews", view: str) -> None:
        super().__init__(lockAspect=True, invertY=False, enableMenu=False)
        self.owner = owner
        self.view = view

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        if self.owner.handle_click(self.view, ev):
            ev.accept()
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if self.owner.handle_drag(self.view, ev):
            ev.accept()
        else:
            super().mouseDragEvent(ev, axis)

    def wheelEvent(self, ev, axis=None) -> None:  # noqa: N802
        if ev.modifiers() & Qt.ControlModifier:
            super().wheelEvent(ev, axis)
        else:
            step = 1 if ev.delta() > 0 else -1
            self.owner.step_slice(self.view, step)
            ev.accept()


class _View:
    """The items of one view."""

    def __init__(self, owner: "OrthoViews", name: str) -> None:
        self.name = name
        self.axes = view_axes(name)
        self.vb = SliceViewBox(owner, name)
        self.image = pg.ImageItem()
        self.image.setOpts(axisOrder="row-major")
        self.masks = {}
        self.vb.addItem(self.image)
        for z, kind in enumerate(MASK_KINDS, start=1):
            item = pg.ImageItem()
            item.setOpts(axisOrder="row-major")
            item.setZValue(z)
            item.setVisible(False)
            self.vb.addItem(item)
            self.masks[kind] = item
        self.circles = CirclesItem()
        self.circles.setZValue(10)
        self.highlight = CirclesItem()
        self.highlight.setZValue(11)
        self.vb.addItem(self.circles)
        self.vb.addItem(self.highlight)
        pen = pg.mkPen((255, 255, 0, 150), width=1, style=Qt.DashLine)
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        for line in (self.vline, self.hline):
            line.setZValue(20)
            line.setVisible(False)      # until there is a volume to point into
            self.vb.addItem(line, ignoreBounds=True)
        self.title = pg.LabelItem(justify="left", size="9pt")
        # hit-testing of the picks drawn on this view
        self.pick_index = np.zeros(0, dtype=np.int64)
        self.centres = np.zeros((0, 2))
        self.radii = np.zeros(0)


class OrthoViews(pg.GraphicsLayoutWidget):
    """The three slice views of one volume, its picks (a :class:`PicksModel`) and masks."""

    #: (x, y, z) voxel position of the crosshair after every change
    position_changed = pyqtSignal(int, int, int)
    #: "(x, y, z) value" under the mouse; "" when the mouse is over no voxel
    cursor_info = pyqtSignal(str)

    def __init__(self, model: PicksModel, styles: ClassStyles, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.styles = styles
        self.data = None
        self.shape: Optional[tuple[int, int, int]] = None
        self.position = [0, 0, 0]  # x, y, z of the crosshair
        self.display = {"vmin": 0.0, "vmax": 1.0, "sigma": 0.0, "equalize": False,
                        "invert": False}
        self.mask_data: dict = {kind: None for kind in MASK_KINDS}
        self.mask_visible = {kind: True for kind in MASK_KINDS}
        self.mask_alpha = 0.4
        self.show_picks = True
        self.line_width = 2.0
        self.score_threshold = 0.0
        self.selected = -1
        self._mouse_at: Optional[QPointF] = None   # scene position of the mouse, if over us
        #: what clicks and drags on the views do (see handle_click); None: pan and zoom only
        self.mouse_handler = None
        # views whose slice of a new volume is still to be read (see set_volume)
        self._pending: set = set()
        self._pending_timer = QTimer(self)
        self._pending_timer.setSingleShot(True)
        self._pending_timer.setInterval(30)
        self._pending_timer.timeout.connect(self.draw_pending)

        self.setBackground("#202020")
        self.setFocusPolicy(Qt.StrongFocus)
        #: what to do while no volume is shown, in the middle of the views
        self.hint = QLabel(EMPTY_HINT, self)
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #d0d0d0; font-size: 12pt; background: transparent;")
        self.hint.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.views = {name: _View(self, name) for name in VIEWS}
        ci = self.ci
        ci.setSpacing(8)  # a visible gap between zoomed views
        places = {"xy": (0, 0), "zy": (0, 1), "xz": (2, 0)}
        for name, (row, col) in places.items():
            view = self.views[name]
            ci.addItem(view.title, row=row, col=col)
            ci.addItem(view.vb, row=row + 1, col=col)
        # The views share one zoom (voxels per screen pixel) and centre (x, y, z), so the
        # shared axes line up and every view keeps square voxels.
        self._zoom: Optional[tuple[float, list]] = None
        self._fit = True
        self._syncing = False
        for view in self.views.values():
            view.vb.sigRangeChangedManually.connect(
                lambda _mask, name=view.name: self._on_user_range(name))
            view.vb.sigResized.connect(self._on_resized)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        model.changed.connect(self.refresh_picks)

    # -- volume and position --------------------------------------------------------------
    def set_volume(self, data: np.ndarray, **display) -> None:
        """Show a (z, y, x) volume (a memory map is fine: only slices are read).

        ``display`` options (see :meth:`set_display`) apply from the first picture on. The XY
        slice is drawn now; ZY and XZ once the event loop has painted it (or at once with
        :meth:`draw_pending`).
        """
        unknown = set(display) - set(self.display)
        if unknown:
            raise KeyError(f"unknown display options {sorted(unknown)}")
        self.display.update(display)
        self.data = data
        self.hint.hide()
        for view in self.views.values():
            view.vline.setVisible(True)
            view.hline.setVisible(True)
        self.shape = tuple(int(s) for s in data.shape)
        nz, ny, nx = self.shape
        self.position = [nx // 2, ny // 2, nz // 2]
        for kind in MASK_KINDS:
            self.mask_data[kind] = None
        self.selected = -1
        self._layout_views()
        self.refresh_images(["xy"])
        self._pending = {"zy", "xz"}
        for name in self._pending:
            self.views[name].image.clear()  # not the previous volume's slice meanwhile
        self._pending_timer.start()
        self.refresh_picks()
        self.reset_zoom()
        self._update_readout()
        self.position_changed.emit(*self.position)

    def draw_pending(self) -> None:
        """Draw the slices of a new volume not drawn yet (ZY and XZ after set_volume)."""
        self._pending_timer.stop()
        if self._pending:
            self.refresh_images([name for name in VIEWS if name in self._pending])

    def _layout_views(self) -> None:
        """Give each view a box in proportion to the volume's extents (x + z wide, y + z
        high), so one zoom fills all three views and no view is squashed."""
        if getattr(self, "shape", None) is None:
            return
        nz, ny, nx = self.shape
        layout = self.ci.layout
        try:
            left, top, right, bottom = layout.getContentsMargins()
        except RuntimeError:        # a resize while the widget is destroyed: its layout went first
            return
        titles = sum(self.views[name].title.preferredHeight() for name in ("xy", "xz"))
        width = self.viewport().width() - left - right - layout.horizontalSpacing() - 4
        height = (self.viewport().height() - top - bottom - titles
                  - 3 * layout.verticalSpacing() - 4)
        if width <= 2 or height <= 2:
            return
        scale = min(width / float(nx + nz), height / float(ny + nz))
        layout.setColumnFixedWidth(0, max(1.0, nx * scale))
        layout.setColumnFixedWidth(1, max(1.0, nz * scale))
        layout.setRowFixedHeight(1, max(1.0, ny * scale))
        layout.setRowFixedHeight(3, max(1.0, nz * scale))
        layout.activate()  # the boxes take their sizes now, before the zoom is fitted

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        if getattr(self, "hint", None) is not None:   # not yet while the base class is set up
            self.hint.setGeometry(self.rect())
        self._layout_views()

    def reset_zoom(self) -> None:
        """Show the whole volume in every view (and keep fitting it when resized)."""
        self._fit = True
        self._fit_zoom()

    def _boxes(self) -> Optional[dict]:
        sizes = {name: (view.vb.width(), view.vb.height()) for name, view in self.views.items()}
        return sizes if all(w > 1 and h > 1 for w, h in sizes.values()) else None

    def _fit_zoom(self) -> None:
        boxes = self._boxes()
        if self.shape is None or boxes is None:
            return
        nz, ny, nx = self.shape
        size = (nx, ny, nz)
        per_pixel = max(max(size[h] / boxes[name][0], size[v] / boxes[name][1])
                        for name, (h, v, _) in ((n, view_axes(n)) for n in VIEWS))
        self._zoom = (per_pixel * 1.04, [nx / 2.0, ny / 2.0, nz / 2.0])
        self._apply_zoom()

    def _apply_zoom(self) -> None:
        boxes = self._boxes()
        if self._zoom is None or boxes is None:
            return
        per_pixel, centre = self._zoom
        self._syncing = True
        try:
            for name, view in self.views.items():
                h, v, _ = view.axes
                half_w = boxes[name][0] * per_pixel / 2.0
                half_h = boxes[name][1] * per_pixel / 2.0
                view.vb.setRange(xRange=(centre[h] - half_w, centre[h] + half_w),
                                 yRange=(centre[v] - half_h, centre[v] + half_h), padding=0)
        finally:
            self._syncing = False

    def _on_user_range(self, name: str) -> None:
        """The user zoomed or panned one view: make the others follow."""
        if self._syncing or self._zoom is None:
            return
        view = self.views[name]
        (x0, x1), (y0, y1) = view.vb.viewRange()
        width = view.vb.width()
        if width <= 1:
            return
        h, v, _ = view.axes
        centre = list(self._zoom[1])
        centre[h], centre[v] = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        self._zoom = ((x1 - x0) / width, centre)
        self._fit = False
        self._apply_zoom()

    def _on_resized(self, *_args) -> None:
        if self._fit:
            self._fit_zoom()
        else:
            self._apply_zoom()

    def set_position(self, x: int, y: int, z: int) -> None:
        """Move the crosshair to voxel (x, y, z) (clipped into the volume)."""
        if self.shape is None:
            return
        nz, ny, nx = self.shape
        new = [int(np.clip(x, 0, nx - 1)), int(np.clip(y, 0, ny - 1)),
               int(np.clip(z, 0, nz - 1))]
        if new == self.position:
            return
        changed = [name for name, view in self.views.items()
                   if new[view.axes[2]] != self.position[view.axes[2]]]
        self.position = new
        self.refresh_images(changed)
        self.refresh_picks()
        self._update_readout()   # the voxel under the mouse is now another one
        self.position_changed.emit(*self.position)

    def step_slice(self, view: str, step: int) -> None:
        """Move the slice of ``view`` by ``step`` voxels."""
        pos = list(self.position)
        pos[view_axes(view)[2]] += int(step)
        self.set_position(*pos)

    def keyPressEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        steps = {Qt.Key_Up: 1, Qt.Key_Down: -1, Qt.Key_PageUp: 10, Qt.Key_PageDown: -10}
        if ev.key() in steps and self.shape is not None:
            self.step_slice("xy", steps[ev.key()])
            ev.accept()
        else:
            super().keyPressEvent(ev)

    # -- drawing ----------------------------------------------------------------------------
    def set_display(self, **options) -> None:
        """Change ``vmin``, ``vmax``, ``sigma``, ``equalize`` or ``invert`` and redraw."""
        unknown = set(options) - set(self.display)
        if unknown:
            raise KeyError(f"unknown display options {sorted(unknown)}")
        self.display.update(options)
        self.refresh_images()

    def refresh_images(self, names: Optional[Iterable[str]] = None) -> None:
        """Re-read and redraw the slices of ``names`` (default: all views)."""
        if self.data is None:
            return
        for name in names if names is not None else VIEWS:
            self._pending.discard(name)
            view = self.views[name]
            index = self.position[view.axes[2]]
            image = render_slice(slice_image(self.data, name, index), **self.display)
            view.image.setImage(image, autoLevels=False, levels=(0.0, 1.0))
            self._draw_masks(view)
            h, v, s = VIEW_AXES[name]
            view.title.setText(f"<b>{name.upper()}</b>&nbsp;&nbsp;{s} = {index}")
        for view in self.views.values():
            self._draw_crosshair(view)

    def _draw_crosshair(self, view: _View) -> None:
        h, v, _ = view.axes
        view.vline.setValue(self.position[h] + 0.5)
        view.hline.setValue(self.position[v] + 0.5)

    def set_mask(self, kind: str, volume: Optional[np.ndarray]) -> None:
        """Overlay a region of interest (non-zero inside), label (class ids) or occupancy
        (instance ids) volume; None removes it."""
        if kind not in MASK_KINDS:
            raise KeyError(kind)
        self.mask_data[kind] = volume
        for view in self.views.values():
            self._draw_masks(view)

    def set_mask_options(self, alpha: Optional[float] = None, **visible: bool) -> None:
        """Overlay opacity (0-1) and visibility per kind, e.g. ``labels=False``."""
        if alpha is not None:
            self.mask_alpha = float(alpha)
        for kind, flag in visible.items():
            if kind not in MASK_KINDS:
                raise KeyError(kind)
            self.mask_visible[kind] = bool(flag)
        for view in self.views.values():
            self._draw_masks(view)

    def _draw_masks(self, view: _View) -> None:
        for kind, item in view.masks.items():
            volume = self.mask_data[kind]
            if volume is None or not self.mask_visible[kind]:
                item.setVisible(False)
                continue
            values = slice_image(volume, view.name, self.position[view.axes[2]])
            if kind == "mask":
                ids = (values != 0).astype(np.int64)
                colours = [REGION_COLOUR]
            else:
                ids = values.astype(np.int64)
                n = int(ids.max()) if ids.size else 1
                colours = self.styles.rgb_table(min(max(n, 1), len(self.styles.palette)))
            item.setImage(mask_rgba(ids, colours), autoLevels=False, levels=(0, 255))
            item.setOpacity(self.mask_alpha)
            item.setVisible(True)

    def visible_picks(self) -> np.ndarray:
        """Indices of the picks shown (score at least the threshold)."""
        n = len(self.model)
        if not self.show_picks:
            return np.zeros(0, dtype=np.int64)
        if self.model.has_scores and self.score_threshold > 0:
            return np.nonzero(self.model.scores >= self.score_threshold)[0]
        return np.arange(n)

    def refresh_picks(self) -> None:
        """Redraw the circles of the picks on every view."""
        shown = self.visible_picks()
        xyz = self.model.xyz[shown]
        classes = self.model.classes[shown]
        radii = self.styles.radii(classes)
        if not (0 <= self.selected < len(self.model)):
            self.selected = -1
        for view in self.views.values():
            cut, centres, sections = circle_sections(xyz, radii, view.name,
                                                     self.position[view.axes[2]])
            view.pick_index = shown[cut]
            view.centres = centres
            view.radii = sections
            colours = [self.styles.colour(c) for c in classes[cut]]
            view.circles.set_circles(centres + 0.5, sections, colours, self.line_width)
            sel = np.nonzero(view.pick_index == self.selected)[0]
            view.highlight.set_circles(centres[sel] + 0.5, sections[sel] + 1.0,
                                       ["#ffffff"] * len(sel), self.line_width + 1,
                                       Qt.DashLine)

    def select_pick(self, index: int, jump: bool = False) -> None:
        """Highlight pick ``index`` (-1: none); with ``jump`` move the crosshair to it."""
        self.selected = int(index)
        if jump and 0 <= index < len(self.model):
            x, y, z = np.rint(self.model.xyz[index]).astype(int)
            self.set_position(x, y, z)
        self.refresh_picks()

    # -- coordinates --------------------------------------------------------------------------
    def voxel_at(self, view: str, scene_pos: QPointF) -> np.ndarray:
        """(x, y, z) voxel coordinates (floats) of a scene point on ``view``; the slice
        coordinate is the view's current slice."""
        point = self.views[view].vb.mapSceneToView(QPointF(scene_pos))
        # on screen voxel i covers [i, i + 1)
        return slice_to_volume(view, point.x() - 0.5, point.y() - 0.5, self.position)

    def widget_point(self, view: str, xyz: Sequence[float]) -> QPoint:
        """Widget (viewport) pixel of voxel ``xyz`` in ``view``: for tests and tools."""
        h, v, _ = volume_to_slice(view, xyz)
        scene = self.views[view].vb.mapViewToScene(QPointF(h + 0.5, v + 0.5))
        return self.mapFromScene(scene)

    def _inside(self, xyz: np.ndarray) -> bool:
        return self.shape is not None and inside_volume(xyz, self.shape)

    def drawn_picks(self, view: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The circles drawn on ``view``: pick indices, centres (n, 2) in the view's
        (horizontal, vertical) voxel coordinates and radii."""
        item = self.views[view]
        return item.pick_index, item.centres, item.radii

    def _on_mouse_moved(self, scene_pos) -> None:
        self._mouse_at = QPointF(scene_pos)
        self._update_readout()

    def _update_readout(self) -> None:
        """Say which voxel is under the mouse and its value (of the slice shown now), or ""
        when the mouse is outside the views or the volume."""
        text = ""
        if self.data is not None and self._mouse_at is not None:
            for name, view in self.views.items():
                if view.vb.sceneBoundingRect().contains(self._mouse_at):
                    xyz = self.voxel_at(name, self._mouse_at)
                    if self._inside(xyz):
                        x, y, z = (int(round(c)) for c in xyz)
                        text = f"({x}, {y}, {z}) {float(self.data[z, y, x]):.4g}"
                    break
        self.cursor_info.emit(text)

    def leaveEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        self._mouse_at = None
        self._update_readout()
        super().leaveEvent(ev)

    # -- mouse ------------------------------------------------------------------------------
    def handle_click(self, view: str, ev: MouseClickEvent) -> bool:
        """A click on ``view``, passed to the mouse handler when it falls inside the volume;
        True when it was used."""
        if self.mouse_handler is None or self.data is None:
            return False
        xyz = self.voxel_at(view, ev.scenePos())
        if not self._inside(xyz):
            return False
        return self.mouse_handler.click(view, xyz, ev.button(), double=ev.double(),
                                        modifiers=ev.modifiers())

    def handle_drag(self, view: str, ev: MouseDragEvent) -> bool:
        """A drag on ``view``, passed to the mouse handler; False lets the view pan."""
        if self.mouse_handler is None or self.data is None:
            return False
        return self.mouse_handler.drag(view, ev.button(),
                                       self.voxel_at(view, ev.buttonDownScenePos()),
                                       self.voxel_at(view, ev.scenePos()),
                                       ev.isStart(), ev.isFinish())
