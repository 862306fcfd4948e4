"""The dialog that chooses a run of a copick project to open in the Particle Visualization tab:
the project's config JSON, the run, the tomogram (type and voxel spacing) and, optionally,
whose picks of which particle to show.

Choosing the config fills the runs, the objects and (per run) the tomograms and the pick
owners from the project; every box stays editable, so a project that cannot be listed can
still be opened by name.
"""

from __future__ import annotations

from typing import Any, Optional

from PyQt5.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from deepetpicker.errors import DeepETPickerError
from gui.dialogs import COPICK_FILTER
from gui.widgets.fields import PathField, dspin, hbox

ANY = "(any)"
ALL_PARTICLES = "(all particles)"


def _editable(tip: str) -> QComboBox:
    box = QComboBox()
    box.setEditable(True)
    box.setToolTip(tip)
    return box


def _fill(box: QComboBox, items: list[str], first: Optional[str] = None) -> None:
    """Replace the entries of ``box`` (keeping the typed text when it is one of them)."""
    typed = box.currentText()
    box.blockSignals(True)
    box.clear()
    if first is not None:
        box.addItem(first)
    box.addItems(items)
    if typed and box.findText(typed) >= 0:
        box.setCurrentText(typed)
    box.blockSignals(False)


class CopickRunDialog(QDialog):
    """Choose ``config``, ``run``, ``tomo_type``, ``voxel_spacing`` and optionally
    ``user_id``, ``session_id`` and ``object_name`` (see :meth:`values`)."""

    def __init__(self, parent: Optional[QWidget] = None, config: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from copick project")
        self.root: Any = None
        self.config = PathField("open", COPICK_FILTER, "the project's config JSON")
        self.run = _editable("The run to open")
        self.tomo_type = _editable("Tomogram type (e.g. wbp, denoised)")
        self.voxel_spacing = dspin(0.001, 100000.0, 10.0, 3, 0.5,
                                   "Voxel spacing of the tomogram in Angstrom")
        self.user = _editable("Show the picks of this copick user (any: every user)")
        self.session = _editable("Show the picks of this session (any: every session)")
        self.object_name = _editable("Show the picks of this particle")
        for box, first in ((self.user, ANY), (self.session, ANY),
                           (self.object_name, ALL_PARTICLES)):
            box.addItem(first)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Config", self.config)
        form.addRow("Run", self.run)
        form.addRow("Tomogram", hbox("type", self.tomo_type, "voxel spacing (A)",
                                     self.voxel_spacing))
        form.addRow("Picks of", hbox("user", self.user, "session", self.session))
        form.addRow("Particle", self.object_name)
        buttons = QDialogButtonBox(QDialogButtonBox.Open | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

        self.config.edit.editingFinished.connect(self.read_project)
        self.config.button.clicked.connect(self.read_project)
        self.run.currentTextChanged.connect(self._read_run)
        if config:
            self.config.setText(config)
            self.read_project()

    def read_project(self) -> bool:
        """Fill the runs and particles from the project of the config field; False (and the
        reason under the fields) when it cannot be opened."""
        from deepetpicker.io.copick_project import open_project, particle_objects

        path = self.config.text()
        if not path:
            return False
        try:
            self.root = open_project(path)
            objects = particle_objects(self.root, path)
            runs = [str(r.name) for r in self.root.runs]
        except DeepETPickerError as exc:
            self.root = None
            self.message.setText(str(exc))
            return False
        _fill(self.object_name, [o.name for o in objects], ALL_PARTICLES)
        _fill(self.run, runs)
        self.message.setText(f"{len(runs)} run(s), particles: "
                             f"{', '.join(o.name for o in objects) or 'none'}")
        self._read_run(self.run.currentText())
        return True

    def _read_run(self, name: str) -> None:
        """Offer the tomograms and pick owners of run ``name``."""
        from deepetpicker.io.copick_project import run_contents

        run = self.root.get_run(name) if self.root is not None and name else None
        if run is None:
            return
        contents = run_contents(run)
        _fill(self.tomo_type, list(dict.fromkeys(t for t, _ in contents.tomograms)))
        spacings = [vs for t, vs in contents.tomograms if t == self.tomo_type.currentText()]
        if spacings and all(abs(vs - self.voxel_spacing.value()) > 1e-3 for vs in spacings):
            self.voxel_spacing.setValue(spacings[0])
        _fill(self.user, list(dict.fromkeys(u for u, _ in contents.pick_owners)), ANY)
        _fill(self.session, list(dict.fromkeys(s for _, s in contents.pick_owners)), ANY)

    def values(self) -> dict:
        """The keyword arguments of :meth:`gui.viewer_document.ViewerDocument.open_copick_run`
        that the fields describe."""
        def chosen(box: QComboBox, none: str) -> Optional[str]:
            text = box.currentText().strip()
            return None if text in ("", none) else text

        name = chosen(self.object_name, ALL_PARTICLES)
        return {"config": self.config.text(), "run": self.run.currentText().strip(),
                "tomo_type": self.tomo_type.currentText().strip(),
                "voxel_spacing": self.voxel_spacing.value(),
                "user_id": chosen(self.user, ANY), "session_id": chosen(self.session, ANY),
                "object_names": [name] if name else None}
