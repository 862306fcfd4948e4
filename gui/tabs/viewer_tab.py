"""The Particle Visualization tab: orthogonal slices, overlays and manual picking.

Unsaved picks are never lost: the title shows a marker, opening another tomogram or picks
file or closing asks first, and one second after every edit the picks are written to a hidden
autosave file beside the pick file (``.<name>.autosave.coords``), which is offered for
restore the next time that tomogram or pick file is opened (or the application starts).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from PyQt5.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (QAction, QCheckBox, QFileDialog, QFormLayout, QGridLayout,
                             QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider,
                             QSplitter, QVBoxLayout, QWidget)

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import read_picks
from deepetpicker.io.tomogram import Tomogram, load_tomogram
from gui import dialogs
from deepetpicker.render import percentile_limits
from gui.display import ClassStyles, sample_volume
from gui.picks_model import SAVE_FILTERS, PicksModel, autosave_path, remove_autosave
from gui.widgets.class_table import ClassTable
from gui.widgets.fields import dspin, spin
from gui.widgets.ortho_views import MASK_KINDS, OrthoViews
from gui.widgets.picks_table import PicksTable

log = logging.getLogger("deepetpicker.gui")

PICKS_FILTER = ("Pick files (*.coords *.txt *.csv *.box *.star *.tbl *.json *.ndjson);;"
                "All files (*)")


class ViewerTab(QWidget):
    """Slice viewer and pick editor for one tomogram at a time."""

    #: the document part of the window title changed
    title_changed = pyqtSignal()
    status_message = pyqtSignal(str)

    def __init__(self, settings: Optional[QSettings] = None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.tomogram: Optional[Tomogram] = None
        self.sample = None
        self.autosave_delay_ms = 1000
        self.model = PicksModel(self)
        self.styles = ClassStyles()
        self.views = OrthoViews(self.model, self.styles)
        self.table = PicksTable(self.model, self.styles)
        self.class_table = ClassTable(self.styles)

        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.timeout.connect(self.autosave_now)

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
        self.readout = QLabel("(x, y, z) value")
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
        right.setStretchFactor(0, 1)  # extra height to the controls, the table keeps its own
        right.setStretchFactor(1, 0)
        right.setSizes([640, 260])
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
        for action in (self.undo_action, self.redo_action, self.save_action):
            action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            self.addAction(action)

    def _files_box(self) -> QGroupBox:
        box = QGroupBox("Files")
        grid = QGridLayout(box)
        self.open_button = QPushButton("Open tomogram...")
        self.load_picks_button = QPushButton("Load picks...")
        self.save_button = QPushButton("Save")
        self.save_as_button = QPushButton("Save As...")
        self.labels_button = QPushButton("Open labels...")
        self.ocp_button = QPushButton("Open occupancy...")
        for i, b in enumerate((self.open_button, self.load_picks_button, self.save_button,
                               self.save_as_button, self.labels_button, self.ocp_button)):
            grid.addWidget(b, i // 2, i % 2)
        self.file_label = QLabel("No tomogram open")
        self.file_label.setWordWrap(True)
        grid.addWidget(self.file_label, 3, 0, 1, 2)
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
        self.alpha_slider.setToolTip("Opacity of the label and occupancy overlays")
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
        for axis in "xyz":
            self.sliders[axis].valueChanged.connect(self._on_nav)
            self.spins[axis].valueChanged.connect(self._on_nav)
        self.views.position_changed.connect(self._on_position)
        self.views.cursor_info.connect(self.readout.setText)
        self.views.pick_selected.connect(self.table.show_pick)
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
        self.table.pick_activated.connect(lambda i: self.views.select_pick(i, jump=True))
        self.model.changed.connect(self._on_picks_changed)
        self.model.undo_stack.indexChanged.connect(self._schedule_autosave)
        self.model.dirty_changed.connect(lambda _d: self.title_changed.emit())

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.load_picks_button, self.save_button, self.save_as_button,
                       self.labels_button, self.ocp_button, self.picking):
            widget.setEnabled(enabled)

    # ------------------------------------------------------------------------------------------
    # Title and state
    # ------------------------------------------------------------------------------------------
    def document_title(self) -> str:
        """``tomo.mrc - picks.coords *``: what is open, with ``*`` for unsaved picks."""
        if self.tomogram is None:
            return ""
        picks = self.model.path.name if self.model.path is not None else "new picks"
        return f"{self.tomogram.path.name} - {picks}{' *' if self.model.dirty else ''}"

    @property
    def default_picks_path(self) -> Optional[Path]:
        """``<tomogram folder>/<stem>.coords``: where new picks of this tomogram are saved."""
        if self.tomogram is None or self.tomogram.path is None:
            return None
        return self.tomogram.path.with_suffix(".coords")

    def _picks_target(self) -> Optional[Path]:
        return self.model.path if self.model.path is not None else self.default_picks_path

    # ------------------------------------------------------------------------------------------
    # Opening files
    # ------------------------------------------------------------------------------------------
    def choose_tomogram(self) -> None:
        start = str(self.tomogram.path.parent) if self.tomogram is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open tomogram", start, dialogs.TOMO_FILTER)
        if path:
            self.open_tomogram(path)

    def open_tomogram(self, path, picks=None) -> bool:
        """Show a tomogram (memory-mapped); optionally load ``picks`` (a file) for editing.

        Asks first when the current picks are unsaved. Returns False when nothing changed.
        """
        if not self.maybe_keep_work("Open another tomogram"):
            return False
        try:
            tomo = load_tomogram(path, mmap=True)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot open the tomogram", str(exc))
            return False
        self.tomogram = tomo
        self.model.clear(tomo.name, tomo.shape, tomo.voxel_size)
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
        self._remember("tomogram", str(tomo.path))
        self._remember("picks", "")
        self.status_message.emit(f"Opened {tomo.path.name} ({nx} x {ny} x {nz})")
        if picks is not None:
            self.load_picks(picks, ask=False)
        else:
            self.offer_restore(self.default_picks_path)
        self.title_changed.emit()
        self.views.setFocus()
        return True

    def choose_picks(self) -> None:
        start = str(self._picks_target().parent) if self._picks_target() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Load picks", start, PICKS_FILTER)
        if path:
            self.load_picks(path)

    def load_picks(self, path, ask: bool = True) -> bool:
        """Load a pick file (ours or another program's) for editing."""
        if self.tomogram is None:
            dialogs.show_error(self, "Load picks", "Open the tomogram the picks belong to "
                               "first (Open tomogram...).")
            return False
        if ask and not self.maybe_keep_work("Load other picks"):
            return False
        try:
            self.model.load(path)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot load the picks", str(exc))
            return False
        classes = self.model.classes
        if len(classes):
            self.class_count.setValue(max(self.class_count.value(), int(classes.max())))
        self._use_sidecar_diameters(path)
        self._remember("picks", str(path))
        self.status_message.emit(f"Loaded {len(self.model)} picks from {Path(path).name}")
        self.offer_restore(self.model.path)
        self.title_changed.emit()
        return True

    def _use_sidecar_diameters(self, path) -> None:
        """Predicted picks come with ``<name>.json`` naming the particle diameter of each
        class: draw the circles that size."""
        import json

        sidecar = Path(path).with_name(Path(path).name + ".json")
        if not sidecar.is_file():
            return
        try:
            diameters = json.loads(sidecar.read_text()).get("diameters") or []
            diameters = [float(d) for d in diameters]
        except (OSError, ValueError, TypeError, AttributeError):
            return
        if diameters:
            self.class_count.setValue(max(self.class_count.value(), len(diameters)))
        for cls, diameter in enumerate(diameters, start=1):
            if diameter > 0:
                self.class_table.set_diameter(cls, diameter)

    def choose_mask(self, kind: str) -> None:
        start = str(self.tomogram.path.parent) if self.tomogram is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, f"Open {kind}", start, dialogs.TOMO_FILTER)
        if path:
            self.open_mask(kind, path)

    def open_mask(self, kind: str, path) -> bool:
        """Overlay a weak-label or occupancy volume of the open tomogram."""
        if self.tomogram is None:
            return False
        try:
            mask = load_tomogram(path, mmap=True)
            if mask.shape != self.tomogram.shape:
                raise DeepETPickerError(
                    f"{path} has shape {mask.shape} (z, y, x) but the tomogram "
                    f"{self.tomogram.path.name} has {self.tomogram.shape}. Choose the {kind} "
                    f"file made from this tomogram (same name under the dataset's "
                    f"{'label' if kind == 'labels' else 'data_ocp'} folder).")
        except DeepETPickerError as exc:
            dialogs.show_error(self, f"Cannot open the {kind}", str(exc))
            return False
        self.views.set_mask(kind, mask.data)
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
        if self.model.path is None:
            return self.save_as()
        return self._write(self.model.path, None)

    def save_as(self, path=None, fmt: Optional[str] = None) -> bool:
        """Save to a new file; without ``path`` a dialog asks for the file and format."""
        if self.tomogram is None:
            return False
        if path is None:
            start = str(self._picks_target() or "")
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

    def _write(self, path: Path, fmt: Optional[str]) -> bool:
        try:
            written = self.model.save(path, fmt=fmt)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot save the picks", str(exc))
            return False
        except OSError as exc:
            dialogs.show_error(self, "Cannot save the picks",
                               f"Writing {path} failed: {exc.strerror or exc}. Choose another "
                               f"folder with Save As.")
            return False
        if self.tomogram is not None and self.model.path is not None:
            remove_autosave(self.default_picks_path)
            self._remember("picks", str(self.model.path))
        self._autosave_timer.stop()
        names = ", ".join(p.name for p in written)
        self.status_message.emit(f"Saved {len(self.model)} picks to {names}")
        self.title_changed.emit()
        return True

    def autosave_now(self) -> Optional[Path]:
        """Write the unsaved picks to the autosave file (atomically)."""
        target = self._picks_target()
        if target is None or not self.model.dirty:
            return None
        auto = autosave_path(target)
        try:
            self.model.write_autosave(target)
        except (OSError, DeepETPickerError) as exc:
            self.status_message.emit(f"Autosave to {auto} failed: {exc}")
            log.warning("autosave to %s failed: %s", auto, exc)
            return None
        return auto

    def offer_restore(self, picks_path: Optional[Path]) -> bool:
        """If an autosave of ``picks_path`` exists, offer to restore it; True if restored."""
        if picks_path is None:
            return False
        auto = autosave_path(picks_path)
        if not auto.is_file():
            return False
        try:
            picks = read_picks(auto, shape=self.tomogram.shape if self.tomogram else None)
        except DeepETPickerError as exc:
            self.status_message.emit(f"Ignoring an unreadable autosave file: {exc}")
            return False
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(auto.stat().st_mtime))
        question = (f"Unsaved picks of {picks_path.name} from {when} were found "
                    f"({len(picks)} picks in {auto.name}).\n\nRestore them? (No discards them.)")
        if not dialogs.ask_yes_no(self, "Restore unsaved picks", question, default_yes=True):
            remove_autosave(picks_path)
            return False
        picks.tomo_name = self.model.tomo_name
        path = picks_path if picks_path.is_file() else None
        self.model.set_picks(picks, path, dirty=True)
        if len(picks):
            self.class_count.setValue(max(self.class_count.value(), int(picks.classes.max())))
        self.status_message.emit(f"Restored {len(picks)} unsaved picks; save them to keep them")
        self.title_changed.emit()
        return True

    def maybe_keep_work(self, action: str = "Continue") -> bool:
        """Before replacing or closing: ask about unsaved picks. True means go on."""
        if self.tomogram is None or not self.model.dirty:
            return True
        answer = dialogs.ask_save_discard_cancel(
            self, "Unsaved picks",
            f"The picks of {self.tomogram.path.name} have unsaved changes "
            f"({len(self.model)} picks).\n\nSave them before you go on?")
        if answer == dialogs.SAVE:
            return self.save()
        if answer == dialogs.DISCARD:
            self._autosave_timer.stop()
            target = self._picks_target()
            if target is not None:
                remove_autosave(target)
            return True
        return False

    def restore_last_session(self) -> bool:
        """At start-up: reopen the last tomogram if it left an autosave behind."""
        if self.settings is None:
            return False
        tomo = self.settings.value("viewer/tomogram", "", type=str)
        picks = self.settings.value("viewer/picks", "", type=str)
        if not tomo or not Path(tomo).exists():     # a file, or a .zarr folder
            return False
        target = Path(picks) if picks else Path(tomo).with_suffix(".coords")
        if not autosave_path(target).is_file():
            return False
        if not dialogs.ask_yes_no(self, "Unsaved picks from the last session",
                                  f"{Path(tomo).name} has unsaved picks from the last "
                                  f"session. Open it now to restore them?", default_yes=True):
            return False
        if picks and Path(picks).is_file():
            return self.open_tomogram(tomo, picks=picks)
        return self.open_tomogram(tomo)

    def _remember(self, key: str, value: str) -> None:
        if self.settings is not None:
            self.settings.setValue(f"viewer/{key}", value)

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

    def _auto_limits(self) -> Optional[tuple[float, float]]:
        """With auto contrast on: the percentile limits of the open tomogram, also shown in
        the min / max boxes; otherwise None."""
        if self.tomogram is None or not self.auto_contrast.isChecked():
            return None
        lo, hi = percentile_limits(self.sample, self.low_pct.value(), self.high_pct.value())
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
        self.views.set_display(sigma=self.sigma.value(), equalize=self.equalize.isChecked(),
                               invert=self.invert.isChecked())

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
        self.views.picking = self.picking.isChecked()
        self.views.current_class = self.current_class.value()
        if self.current_class.value() > self.class_count.value():
            self.class_count.setValue(self.current_class.value())

    def _update_count(self) -> None:
        n = len(self.model)
        shown = len(self.views.visible_picks())
        self.count_label.setText(f"{n} picks" + (f" ({shown} shown)" if shown != n else ""))

    def _on_picks_changed(self) -> None:
        self._update_count()
        self._schedule_autosave()
        self.title_changed.emit()

    def _schedule_autosave(self, *_args) -> None:
        # also called when the undo stack has moved: an edit changes the table before the
        # stack counts it, so the first edit after a save is only dirty from then on
        if self.model.dirty:
            self._autosave_timer.start(self.autosave_delay_ms)
