"""The Particle Visualization tab: orthogonal slices, overlays and manual picking.

The tab is the view of a :class:`~gui.viewer_document.ViewerDocument` (the tomogram, the
picks, their file, unsaved state and autosave). Unsaved picks are never lost: the title shows
a marker, opening another tomogram or picks file or closing asks first, and one second after
every edit the document writes the picks to a hidden autosave file beside the pick file
(``.<name>.autosave.coords``), which is offered for restore the next time that tomogram or
pick file is opened (or the application starts).

A run of a copick project opens with "Open from copick project...": its tomogram (the
``.zarr`` folder, read in place) and its picks in voxels, to view, edit and save or export
like picks from a file (they are not written back into the project).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence, Union

from PyQt5.QtCore import QSettings, Qt, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import picks_file_filter
from deepetpicker.io.tomogram import Tomogram
from deepetpicker.progress import counted
from deepetpicker.render.slices import percentile_limits
from gui import dialogs
from gui.display import ClassStyles, sample_volume, slice_image, smooth_slice
from gui.picks_model import SAVE_FILTERS
from gui.viewer_document import ViewerDocument
from gui.widgets.class_table import ClassTable
from gui.widgets.copick_dialog import CopickRunDialog
from gui.widgets.fields import dspin, spin
from gui.widgets.ortho_views import MASK_KINDS, OrthoViews
from gui.widgets.pick_controller import PickController
from gui.widgets.picks_table import PicksTable

PICKS_FILTER = picks_file_filter()
#: the voxel read-out while the mouse is over no voxel
READOUT_IDLE = "(x, y, z) value"


class ViewerTab(QWidget):
    """Slice viewer and pick editor for one tomogram at a time."""

    #: the document part of the window title changed
    title_changed = pyqtSignal()
    status_message = pyqtSignal(str)

    def __init__(self, settings: Optional[QSettings] = None, parent=None) -> None:
        super().__init__(parent)
        self.document = ViewerDocument(settings, self)
        #: the picks being edited (the document's)
        self.model = self.document.picks
        self.sample = None
        self.styles = ClassStyles()
        self.views = OrthoViews(self.model, self.styles)
        self.picker = PickController(self.views, self.model, self)
        self.table = PicksTable(self.model, self.styles)
        self.class_table = ClassTable(self.styles)

        self._build()
        self._connect()
        self._set_enabled(False)

    # ------------------------------------------------------------------------------------------
    # Layout
    # ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        # navigation under the views
        self.sliders, self.spins = {}, {}
        nav = QGridLayout()
        for row, axis in enumerate("xyz"):
            slider = QSlider(Qt.Horizontal)
            slider.setRange(0, 0)
            box = spin(0, 0, 0, tip=f"{axis} of the crosshair (voxels, 0-based)")
            nav.addWidget(QLabel(axis), row, 0)
            nav.addWidget(slider, row, 1)
            nav.addWidget(box, row, 2)
            self.sliders[axis], self.spins[axis] = slider, box
        self.readout = QLabel(READOUT_IDLE)
        self.readout.setMinimumWidth(220)
        self.readout.setToolTip("Voxel under the mouse and its value")
        nav.addWidget(self.readout, 0, 3, 3, 1)
        nav.setColumnStretch(1, 1)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.views, 1)
        lv.addLayout(nav)

        # controls on the right
        panel = QWidget()
        pv = QVBoxLayout(panel)
        pv.addWidget(self._files_box())
        pv.addWidget(self._contrast_box())
        pv.addWidget(self._overlay_box())
        pv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        # wide enough for every control, so nothing on the right is cut off
        scroll.setMinimumWidth(max(400, panel.minimumSizeHint().width()
                                   + scroll.verticalScrollBar().sizeHint().width() + 6))
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        # the table of picks stays in sight below the controls (which scroll when short)
        right = QSplitter(Qt.Vertical)
        editing = QWidget()
        ev = QVBoxLayout(editing)
        ev.setContentsMargins(9, 0, 9, 0)
        ev.addWidget(self._picking_box())
        ev.addWidget(self._table_box(), 1)
        right.addWidget(scroll)
        right.addWidget(editing)
        # the table shows about ten rows at 1360 x 860 (the controls scroll); extra height
        # goes to the table
        right.setStretchFactor(0, 0)
        right.setStretchFactor(1, 1)
        right.setSizes([320, 460])
        right.setChildrenCollapsible(False)

        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([900, 420])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.undo_action = self.model.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = self.model.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.save_action = QAction("Save picks", self)
        self.save_action.setShortcut(QKeySequence.Save)
        self.save_action.triggered.connect(self.save)
        self.reset_zoom_action = QAction("Reset zoom", self)
        self.reset_zoom_action.setShortcut(QKeySequence("Ctrl+0"))
        self.reset_zoom_action.setToolTip("Show the whole tomogram in every view")
        self.reset_zoom_action.triggered.connect(self.views.reset_zoom)
        for action in (self.undo_action, self.redo_action, self.save_action,
                       self.reset_zoom_action):
            action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            self.addAction(action)
        # the same commands as the buttons, for the window's menus
        self.open_action = QAction("Open tomogram...", self)
        self.open_action.setShortcut(QKeySequence.Open)
        self.open_action.triggered.connect(self.choose_tomogram)
        self.load_picks_action = QAction("Load picks...", self)
        self.load_picks_action.triggered.connect(self.choose_picks)
        self.save_as_action = QAction("Save picks as...", self)
        self.save_as_action.setShortcut(QKeySequence.SaveAs)
        self.save_as_action.triggered.connect(lambda: self.save_as())
        self.delete_action = QAction("Delete selected picks", self)
        self.delete_action.triggered.connect(self.table.delete_selected)

    def _files_box(self) -> QGroupBox:
        box = QGroupBox("Files")
        grid = QGridLayout(box)
        self.open_button = QPushButton("Open tomogram...")
        self.load_picks_button = QPushButton("Load picks...")
        self.save_button = QPushButton("Save")
        self.save_as_button = QPushButton("Save As...")
        self.labels_button = QPushButton("Open labels...")
        self.ocp_button = QPushButton("Open occupancy...")
        self.copick_button = QPushButton("Open from copick project...")
        self.copick_button.setToolTip("Open a run's tomogram and picks from a copick project")
        self.region_button = QPushButton("Open mask...")
        self.region_button.setToolTip("Overlay a region of interest (the mask volume given "
                                      "to prediction: non-zero inside)")
        for i, b in enumerate((self.open_button, self.copick_button, self.load_picks_button,
                               self.save_button, self.save_as_button, self.labels_button,
                               self.ocp_button, self.region_button)):
            grid.addWidget(b, i // 2, i % 2)
        self.file_label = QLabel("No tomogram open")
        self.file_label.setWordWrap(True)
        grid.addWidget(self.file_label, 4, 0, 1, 2)
        return box

    def _contrast_box(self) -> QGroupBox:
        box = QGroupBox("Display")
        form = QFormLayout(box)
        self.auto_contrast = QCheckBox("auto (percentiles)")
        self.auto_contrast.setChecked(True)
        self.low_pct = dspin(0.0, 50.0, 1.0, 2, 0.5, "Lower percentile for auto contrast")
        self.high_pct = dspin(50.0, 100.0, 99.0, 2, 0.5, "Upper percentile for auto contrast")
        row = QHBoxLayout()
        row.addWidget(self.auto_contrast)
        row.addWidget(self.low_pct)
        row.addWidget(self.high_pct)
        form.addRow("Contrast", row)
        self.vmin = dspin(-1e6, 1e6, 0.0, 3, 0.1, "Display minimum (darkest)")
        self.vmax = dspin(-1e6, 1e6, 1.0, 3, 0.1, "Display maximum (brightest)")
        row = QHBoxLayout()
        row.addWidget(self.vmin)
        row.addWidget(self.vmax)
        form.addRow("Min / max", row)
        self.sigma = dspin(0.0, 20.0, 0.0, 1, 0.5, "Gaussian filter sigma in voxels (0 = off)")
        self.equalize = QCheckBox("equalise histogram")
        self.invert = QCheckBox("invert")
        row = QHBoxLayout()
        row.addWidget(self.sigma)
        row.addWidget(self.equalize)
        row.addWidget(self.invert)
        form.addRow("Gaussian", row)
        return box

    def _overlay_box(self) -> QGroupBox:
        box = QGroupBox("Overlays")
        form = QFormLayout(box)
        self.show_picks = QCheckBox("picks")
        self.show_picks.setChecked(True)
        self.line_width = dspin(0.5, 10.0, 2.0, 1, 0.5, "Circle line width in pixels")
        row = QHBoxLayout()
        row.addWidget(self.show_picks)
        row.addWidget(QLabel("line width"))
        row.addWidget(self.line_width)
        form.addRow("Show", row)
        self.score_slider = QSlider(Qt.Horizontal)
        self.score_slider.setRange(0, 100)
        self.score_slider.setToolTip("Hide picks whose confidence score is below this")
        self.score_label = QLabel("0.00")
        row = QHBoxLayout()
        row.addWidget(self.score_slider)
        row.addWidget(self.score_label)
        form.addRow("Min score", row)
        self.show_mask = {kind: QCheckBox(kind) for kind in MASK_KINDS}
        row = QHBoxLayout()
        for check in self.show_mask.values():
            check.setChecked(True)
            check.setEnabled(False)
            row.addWidget(check)
        form.addRow("Masks", row)
        self.alpha_slider = QSlider(Qt.Horizontal)
        self.alpha_slider.setRange(0, 100)
        self.alpha_slider.setValue(40)
        self.alpha_slider.setToolTip("Opacity of the mask, label and occupancy overlays")
        form.addRow("Mask opacity", self.alpha_slider)
        self.class_count = spin(1, 99, 1, "Number of classes shown in the table below")
        form.addRow("Classes", self.class_count)
        form.addRow(self.class_table)
        return box

    def _picking_box(self) -> QGroupBox:
        box = QGroupBox("Manual picking")
        row = QHBoxLayout(box)
        self.picking = QCheckBox("enable picking")
        self.picking.setToolTip("Double-click (or Ctrl+click) adds a pick, right-click on a "
                                "pick deletes it, drag a pick to move it")
        self.current_class = spin(1, 99, 1, "Class of the picks you add")
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        row.addWidget(self.picking)
        row.addWidget(QLabel("class"))
        row.addWidget(self.current_class)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        return box

    def _table_box(self) -> QGroupBox:
        box = QGroupBox("Picks")
        v = QVBoxLayout(box)
        self.count_label = QLabel("0 picks")
        self.delete_button = QPushButton("Delete selected")
        row = QHBoxLayout()
        row.addWidget(self.count_label, 1)
        row.addWidget(self.delete_button)
        v.addLayout(row)
        self.table.setMinimumHeight(120)
        v.addWidget(self.table, 1)
        return box

    def _connect(self) -> None:
        self.open_button.clicked.connect(self.choose_tomogram)
        self.load_picks_button.clicked.connect(self.choose_picks)
        self.save_button.clicked.connect(self.save)
        self.save_as_button.clicked.connect(lambda: self.save_as())
        self.labels_button.clicked.connect(lambda: self.choose_mask("labels"))
        self.ocp_button.clicked.connect(lambda: self.choose_mask("occupancy"))
        self.region_button.clicked.connect(lambda: self.choose_mask("mask"))
        self.copick_button.clicked.connect(self.choose_copick_run)
        for axis in "xyz":
            self.sliders[axis].valueChanged.connect(self._on_nav)
            self.spins[axis].valueChanged.connect(self._on_nav)
        self.views.position_changed.connect(self._on_position)
        self.views.cursor_info.connect(lambda text: self.readout.setText(text or READOUT_IDLE))
        self.picker.pick_selected.connect(self.table.show_pick)
        self.auto_contrast.toggled.connect(self._on_auto_contrast)
        self.low_pct.valueChanged.connect(self._on_auto_contrast)
        self.high_pct.valueChanged.connect(self._on_auto_contrast)
        self.vmin.valueChanged.connect(self._on_manual_contrast)
        self.vmax.valueChanged.connect(self._on_manual_contrast)
        self.sigma.valueChanged.connect(self._on_display)
        self.equalize.toggled.connect(self._on_display)
        self.invert.toggled.connect(self._on_display)
        self.show_picks.toggled.connect(self._on_overlays)
        self.line_width.valueChanged.connect(self._on_overlays)
        self.score_slider.valueChanged.connect(self._on_overlays)
        for check in self.show_mask.values():
            check.toggled.connect(self._on_masks)
        self.alpha_slider.valueChanged.connect(self._on_masks)
        self.class_count.valueChanged.connect(self.class_table.set_class_count)
        self.class_table.styles_changed.connect(self.views.refresh_picks)
        self.class_table.styles_changed.connect(self.table.table_model.reload)
        self.picking.toggled.connect(self._on_picking)
        self.current_class.valueChanged.connect(self._on_picking)
        self.undo_button.clicked.connect(self.model.undo_stack.undo)
        self.redo_button.clicked.connect(self.model.undo_stack.redo)
        self.model.undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.model.undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        self.delete_button.clicked.connect(self.table.delete_selected)
        self.table.nothing_to_delete.connect(lambda: self.status_message.emit(
            "No pick selected to delete: select rows in the table (or click a pick's circle), "
            "then press Delete selected."))
        self.model.rows_changed.connect(self.clear_selection)
        self.table.pick_activated.connect(lambda i: self.views.select_pick(i, jump=True))
        self.model.changed.connect(self._update_count)
        self.document.title_changed.connect(self.title_changed)
        self.document.status_message.connect(self.status_message)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.load_picks_button, self.save_button, self.save_as_button,
                       self.labels_button, self.ocp_button, self.region_button,
                       self.picking, self.load_picks_action, self.save_action,
                       self.save_as_action, self.delete_action, self.reset_zoom_action):
            widget.setEnabled(enabled)

    # ------------------------------------------------------------------------------------------
    # Title and state
    # ------------------------------------------------------------------------------------------
    @property
    def tomogram(self) -> Optional[Tomogram]:
        """The open tomogram (the document's)."""
        return self.document.tomogram

    def document_title(self) -> str:
        """``tomo.mrc - picks.coords *``: what is open, with ``*`` for unsaved picks."""
        return self.document.title()

    # ------------------------------------------------------------------------------------------
    # Opening files
    # ------------------------------------------------------------------------------------------
    def choose_tomogram(self) -> None:
        start = str(self.tomogram.path.parent) if self.tomogram is not None else ""
        path = dialogs.choose_tomogram_file(self, "Open tomogram", start)
        if path:
            self.open_tomogram(path)

    def open_tomogram(self, path: Union[str, Path], picks: Union[str, Path, None] = None,
                      restore: bool = False) -> bool:
        """Show a tomogram (memory-mapped); optionally load ``picks`` (a file) for editing.
        Without ``picks``, the picks file of the same name beside the tomogram
        (``NAME.coords`` of ``NAME.mrc``) is loaded when there is one (the status bar says
        so). Unsaved picks autosaved for the picks file are offered back, or with
        ``restore`` (the user already said yes) restored without asking.

        Asks first when the current picks are unsaved. Returns False when nothing changed.
        """
        if not self.maybe_keep_work("Open another tomogram"):
            return False
        try:
            tomo = self.document.open_tomogram(path)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot open the tomogram", str(exc))
            return False
        self._show_tomogram(tomo)
        beside = self.document.default_picks_path
        if picks is not None:
            self.load_picks(picks, ask=False, restore=restore)
        elif beside is not None and beside.is_file():
            self._load_picks_beside(beside, restore)
        else:
            self.offer_restore(beside, ask=not restore)
        self.views.setFocus()
        return True

    def _load_picks_beside(self, path: Path, restore: bool = False) -> bool:
        """Load the picks file named like the open tomogram; a file that cannot be read is
        reported in the status bar and the tomogram stays open without picks."""
        try:
            self.document.load_picks(path)
        except DeepETPickerError as exc:
            self.status_message.emit(f"{path.name} beside the tomogram was not loaded: {exc}")
            self.offer_restore(path, ask=not restore)
            return False
        self._show_classes()
        self._use_sidecar_diameters(path)
        self.status_message.emit(f"Loaded {counted(len(self.model), 'pick')} from {path.name}, "
                                 f"found beside the tomogram")
        self.offer_restore(path, ask=not restore)
        return True

    def choose_copick_run(self) -> None:
        """Ask for a run of a copick project (a dialog) and open it."""
        run = self.document.copick_run
        dialog = CopickRunDialog(self, config=str(run.config) if run is not None else "")
        if dialog.exec_() == QDialog.Accepted:
            self.open_copick_run(**dialog.values())

    def open_copick_run(self, config: Union[str, Path], run: str, tomo_type: str,
                        voxel_spacing: float, user_id: Optional[str] = None,
                        session_id: Optional[str] = None,
                        object_names: Optional[Sequence[str]] = None) -> bool:
        """Show the tomogram of a copick run with its picks (see
        :meth:`ViewerDocument.open_copick_run`); circles are drawn at the particles' sizes.

        Asks first when the current picks are unsaved. Returns False when nothing changed.
        """
        if not self.maybe_keep_work("Open another tomogram"):
            return False
        try:
            found = self.document.open_copick_run(config, run, tomo_type, voxel_spacing,
                                                  user_id, session_id, object_names)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot open the copick run", str(exc))
            return False
        self._show_tomogram(self.document.tomogram)
        if found.objects:
            self.class_count.setValue(max(self.class_count.value(),
                                          max(o.label for o in found.objects)))
        for obj in found.objects:
            diameter = obj.diameter(found.voxel_spacing)
            if diameter:
                self.class_table.set_diameter(obj.label, diameter)
        self._show_classes()
        self.file_label.setText(f"copick run {found.name}: {self.file_label.text()}")
        self.offer_restore(self.document.default_picks_path)
        self.views.setFocus()
        return True

    def _show_tomogram(self, tomo: Tomogram) -> None:
        """Show the document's newly opened tomogram: slider ranges, contrast, overlays."""
        self.sample = sample_volume(tomo.data)
        nz, ny, nx = tomo.shape
        for axis, n in zip("xyz", (nx, ny, nz)):
            for widget in (self.sliders[axis], self.spins[axis]):
                widget.blockSignals(True)  # set_volume sets the position of the new volume
                widget.setRange(0, n - 1)
                widget.blockSignals(False)
        for kind in MASK_KINDS:
            self.show_mask[kind].setEnabled(False)
        # the contrast of the new volume before its first picture: each slice is read once
        limits = self._auto_limits()
        self.views.set_volume(tomo.data, **(dict(zip(("vmin", "vmax"), limits))
                                            if limits is not None else {}))
        self._set_enabled(True)
        vs = f", {tomo.voxel_size:g} A/voxel" if tomo.voxel_size else ""
        self.file_label.setText(f"{tomo.path}\n{nx} x {ny} x {nz} (x, y, z){vs}")

    def choose_picks(self) -> None:
        target = self.document.picks_target
        start = str(target.parent) if target else ""
        path, _ = QFileDialog.getOpenFileName(self, "Load picks", start, PICKS_FILTER)
        if path:
            self.load_picks(path)

    def load_picks(self, path: Union[str, Path], ask: bool = True, restore: bool = False
                   ) -> bool:
        """Load a pick file (ours or another program's) for editing; ``ask``: about unsaved
        picks first; ``restore``: unsaved picks autosaved for the file come back without a
        question."""
        if ask and not self.maybe_keep_work("Load other picks"):
            return False
        try:
            self.document.load_picks(path)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot load the picks", str(exc))
            return False
        self._show_classes()
        self._use_sidecar_diameters(path)
        self.offer_restore(self.model.path, ask=not restore)
        return True

    def _show_classes(self) -> None:
        """Enough rows in the class table for the classes of the picks."""
        classes = self.model.classes
        if len(classes):
            self.class_count.setValue(max(self.class_count.value(), int(classes.max())))

    def _use_sidecar_diameters(self, path) -> None:
        """Predicted picks come with ``<name>.json`` naming the particle diameter of each
        class: draw the circles that size."""
        from deepetpicker.io.picks import sidecar_diameters

        diameters = sidecar_diameters(path)
        if diameters:
            self.class_count.setValue(max(self.class_count.value(), len(diameters)))
        for cls, diameter in enumerate(diameters, start=1):
            if diameter > 0:
                self.class_table.set_diameter(cls, diameter)

    def choose_mask(self, kind: str) -> None:
        start = str(self.tomogram.path.parent) if self.tomogram is not None else ""
        path = dialogs.choose_tomogram_file(self, f"Open {kind}", start)
        if path:
            self.open_mask(kind, path)

    def open_mask(self, kind: str, path: Union[str, Path]) -> bool:
        """Overlay a region of interest (``kind`` "mask"), weak-label or occupancy volume of
        the open tomogram."""
        if self.tomogram is None:
            return False
        try:
            mask = self.document.load_mask(kind, path)
        except DeepETPickerError as exc:
            dialogs.show_error(self, f"Cannot open the {kind}", str(exc))
            return False
        self.views.set_mask(kind, mask)
        self.show_mask[kind].setEnabled(True)
        self.show_mask[kind].setChecked(True)
        self._on_masks()
        self.status_message.emit(f"Showing {kind} from {Path(path).name}")
        return True

    # ------------------------------------------------------------------------------------------
    # Saving, autosave, restore
    # ------------------------------------------------------------------------------------------
    def save(self) -> bool:
        """Save to the current pick file (Save As when there is none)."""
        if self.tomogram is None:
            return False
        if self.document.needs_file_name:
            return self.save_as()
        return self._write(None, None)

    def save_as(self, path: Union[str, Path, None] = None, fmt: Optional[str] = None) -> bool:
        """Save to a new file; without ``path`` a dialog asks for the file and format."""
        if self.tomogram is None:
            return False
        if path is None:
            start = str(self.document.picks_target or "")
            filters = ";;".join(f for f, _, _ in SAVE_FILTERS)
            path, chosen = QFileDialog.getSaveFileName(self, "Save picks as", start, filters)
            if not path:
                return False
            for text, name, suffix in SAVE_FILTERS:
                if text == chosen:
                    fmt = name
                    if not Path(path).suffix:
                        path += suffix
        return self._write(Path(path), fmt)

    def _write(self, path: Optional[Path], fmt: Optional[str]) -> bool:
        try:
            self.document.save(path, fmt)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot save the picks", str(exc))
            return False
        return True

    def offer_restore(self, picks_path: Optional[Path], ask: bool = True) -> bool:
        """If an autosave of ``picks_path`` exists, offer to restore it (without ``ask``:
        restore it); True if restored."""
        recovery = self.document.recovery(picks_path)
        if recovery is None:
            return False
        if not ask:
            self.document.restore(recovery)
            self._show_classes()
            return True
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(recovery.written_at))
        question = (f"Unsaved picks of {recovery.picks_path.name} from {when} were found "
                    f"({counted(len(recovery.picks), 'pick')} in {recovery.autosave.name})."
                    f"\n\nRestore "
                    f"them? (No discards them.)")
        if not dialogs.ask_yes_no(self, "Restore unsaved picks", question, default_yes=True):
            self.document.drop_recovery(recovery)
            return False
        self.document.restore(recovery)
        self._show_classes()
        return True

    def maybe_keep_work(self, action: str = "Continue") -> bool:
        """Before replacing or closing: ask about unsaved picks. True means go on."""
        if not self.document.unsaved:
            return True
        answer = dialogs.ask_save_discard_cancel(
            self, "Unsaved picks",
            f"The picks of {self.tomogram.path.name} have unsaved changes "
            f"({counted(len(self.model), 'pick')}).\n\nSave them before you go on?")
        if answer == dialogs.SAVE:
            return self.save()
        if answer == dialogs.DISCARD:
            self.document.discard()
            return True
        return False

    def restore_last_session(self) -> bool:
        """At start-up: reopen the last tomogram if it left an autosave behind."""
        last = self.document.last_session()
        if last is None:
            return False
        tomo, picks = last
        if not dialogs.ask_yes_no(self, "Unsaved picks from the last session",
                                  f"{tomo.name} has unsaved picks from the last "
                                  f"session. Open it now to restore them?", default_yes=True):
            return False
        return self.open_tomogram(tomo, picks=picks, restore=True)

    # ------------------------------------------------------------------------------------------
    # Reactions
    # ------------------------------------------------------------------------------------------
    def _on_nav(self, _value=None) -> None:
        sender = self.sender()
        axis = next((a for a in "xyz" if sender in (self.sliders[a], self.spins[a])), None)
        if axis is None or self.tomogram is None:
            return
        pos = list(self.views.position)
        pos["xyz".index(axis)] = int(sender.value())
        self.views.set_position(*pos)

    def _on_position(self, x: int, y: int, z: int) -> None:
        for axis, value in zip("xyz", (x, y, z)):
            for widget in (self.sliders[axis], self.spins[axis]):
                if widget.value() != value:
                    widget.blockSignals(True)
                    widget.setValue(value)
                    widget.blockSignals(False)

    def _contrast_values(self):
        """The values auto contrast is taken from: a sample of the tomogram, or with the
        Gaussian filter on, the filtered XY slice at the crosshair (smoothing narrows the
        range of values, so the raw values' limits would show a flat grey)."""
        sigma = self.sigma.value()
        if sigma <= 0:
            return self.sample
        data = self.tomogram.data
        z = self.views.position[2] if self.views.data is data else data.shape[0] // 2
        return smooth_slice(slice_image(data, "xy", z), sigma).ravel()

    def _auto_limits(self) -> Optional[tuple[float, float]]:
        """With auto contrast on: the percentile limits of the image as displayed (see
        :meth:`_contrast_values`), also shown in the min / max boxes; otherwise None."""
        if self.tomogram is None or not self.auto_contrast.isChecked():
            return None
        lo, hi = percentile_limits(self._contrast_values(), self.low_pct.value(),
                                   self.high_pct.value())
        for box, value in ((self.vmin, lo), (self.vmax, hi)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        return lo, hi

    def _on_auto_contrast(self, *_args) -> None:
        limits = self._auto_limits()
        if limits is not None:
            self.views.set_display(vmin=limits[0], vmax=limits[1])

    def _on_manual_contrast(self, *_args) -> None:
        self.auto_contrast.blockSignals(True)
        self.auto_contrast.setChecked(False)
        self.auto_contrast.blockSignals(False)
        self.views.set_display(vmin=self.vmin.value(), vmax=self.vmax.value())

    def _on_display(self, *_args) -> None:
        options = dict(sigma=self.sigma.value(), equalize=self.equalize.isChecked(),
                       invert=self.invert.isChecked())
        if self.sender() is self.sigma:  # the filter changes the values auto contrast uses
            limits = self._auto_limits()
            if limits is not None:
                options.update(vmin=limits[0], vmax=limits[1])
        self.views.set_display(**options)

    def _on_overlays(self, *_args) -> None:
        self.views.show_picks = self.show_picks.isChecked()
        self.views.line_width = self.line_width.value()
        self.views.score_threshold = self.score_slider.value() / 100.0
        self.score_label.setText(f"{self.views.score_threshold:.2f}")
        self.views.refresh_picks()
        self._update_count()

    def _on_masks(self, *_args) -> None:
        self.views.set_mask_options(alpha=self.alpha_slider.value() / 100.0,
                                    **{k: c.isChecked() for k, c in self.show_mask.items()})

    def _on_picking(self, *_args) -> None:
        self.picker.picking = self.picking.isChecked()
        self.picker.current_class = self.current_class.value()
        if self.current_class.value() > self.class_count.value():
            self.class_count.setValue(self.current_class.value())

    def clear_selection(self) -> None:
        """No pick selected, in the table and on the views (row numbers changed)."""
        self.table.clear_selection()
        self.views.select_pick(-1)

    def _update_count(self) -> None:
        n = len(self.model)
        shown = len(self.views.visible_picks())
        self.count_label.setText(counted(n, "pick") + (f" ({shown} shown)" if shown != n else ""))
