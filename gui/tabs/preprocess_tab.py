"""The Preprocessing tab: dataset settings, Load/Save configs, Run, and what was found."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence, Union

from PyQt5.QtCore import QRegularExpression, Qt, pyqtSignal
from PyQt5.QtGui import QRegularExpressionValidator
from PyQt5.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from deepetpicker.config import (
    COORD_FORMATS,
    TOMO_FORMATS,
    PreprocessConfig,
    load_preprocess_config,
)
from deepetpicker.config.grammar import INT_LIST_TYPING_PATTERN, NAME_PATTERN
from deepetpicker.errors import DeepETPickerError
from gui import dialogs
from gui.form_terms import PREPROCESS
from gui.widgets.fields import (
    PathField,
    combo,
    group_box,
    hbox,
    job_tab_layout,
    set_combo,
    spin,
    table,
)
from gui.widgets.job_panel import JobPanel

LABEL_TYPES = (("TBall (truncated ball)", "gaussian"), ("Ball", "sphere"), ("Cubic", "cubic"))
NORM_TYPES = (("z-score (standardization)", "standardization"),
              ("min-max (normalization)", "normalization"))


def dataset_rows(coords_dir: Path, coord_format: str, num_cls: int
                 ) -> list[tuple[int, str, dict[int, int]]]:
    """``(id, tomogram, picks per class)`` of a preprocessed dataset (see
    :func:`deepetpicker.io.dataset.list_dataset`)."""
    from deepetpicker.io.dataset import list_dataset

    return [(t.id, t.stem, t.counts) for t in list_dataset(coords_dir, coord_format, num_cls)]


def found_rows(tomo_folder: str) -> list[tuple[None, str, None]]:
    """``(None, stem, None)`` of every tomogram in ``tomo_folder`` (what preprocessing would
    read; see :func:`deepetpicker.io.tomogram.find_tomograms`); empty when it is not a
    folder."""
    from deepetpicker.io.dataset import RAW_TOMOGRAM_SUFFIXES
    from deepetpicker.io.tomogram import find_tomograms

    if not tomo_folder or not Path(tomo_folder).is_dir():
        return []
    try:
        return [(None, p.stem, None) for p in find_tomograms(tomo_folder, RAW_TOMOGRAM_SUFFIXES)]
    except (DeepETPickerError, OSError):
        return []


def fill_dataset_table(table: QTableWidget,
                       rows: Sequence[tuple[Optional[int], str, Optional[dict[int, int]]]],
                       num_cls: int) -> None:
    """Show ``dataset_rows`` in a table: id, tomogram, total, then one column per class.
    A row without an id is a tomogram normalised only (counts ``{}``) or found in the
    tomogram folder and not preprocessed yet (counts None)."""
    headers = ["id", "tomogram", "particles"] + [f"class {c}" for c in range(1, num_cls + 1)]
    table.clear()
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setRowCount(len(rows))
    for r, (index, stem, counts) in enumerate(rows):
        if index is None:  # normalised only (for inference), or not preprocessed yet
            note = "not preprocessed yet" if counts is None else "no picks"
            values = ["-", stem, note] + [""] * num_cls
        else:
            values = [str(index), stem, str(sum(counts.values()))]
            values += [str(counts.get(c, 0)) for c in range(1, num_cls + 1)]
        for c, text in enumerate(values):
            item = QTableWidgetItem(text)
            item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
            table.setItem(r, c, item)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)


def _number_list(text: str) -> str:
    """A number field's text as a config writes it: no spaces, no trailing comma."""
    return re.sub(r"[\s,]+$", "", text.replace(" ", ""))


class PreprocessTab(QWidget):
    """Settings of one dataset and the preprocessing job."""

    status_message = pyqtSignal(str)
    #: the preprocessing config written by a successful run (path)
    preprocessed = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.config_path: Optional[Path] = None
        self.dset_name = QLineEdit("my_dataset")
        self.dset_name.setValidator(QRegularExpressionValidator(
            QRegularExpression(NAME_PATTERN)))
        self.dset_name.setToolTip("Name of the dataset; used for folders and config files")
        self.base_path = PathField("folder", placeholder="folder for all outputs")
        self.coord_path = PathField("folder", placeholder="folder with <tomogram>.coords files")
        self.coord_format = combo(COORD_FORMATS, ".coords", "Extension of the coordinate files")
        self.tomo_path = PathField("folder", placeholder="folder with the raw tomograms")
        self.tomo_format = combo(TOMO_FORMATS, ".mrc", "Extension of the tomograms")
        self.num_cls = spin(1, 100, 1, "Number of particle classes")
        self.label_type = combo(LABEL_TYPES, "gaussian", "Shape of the weak labels")
        self.label_diameter = spin(3, 301, 9, "Diameter of the weak labels in voxels (one for "
                                              "all classes; a little smaller than the particles)",
                                   " vx")
        self.label_diameters = QLineEdit("")
        self.label_diameters.setValidator(QRegularExpressionValidator(
            QRegularExpression(INT_LIST_TYPING_PATTERN)))
        self.label_diameters.setPlaceholderText("optional, e.g. 13,9,11")
        self.label_diameters.setToolTip(
            "Weak-label diameter of each class in voxels, separated by commas (about 0.6 x "
            "each particle diameter). Leave empty to use the one label diameter for every "
            "class; when given, the smallest of them is the config's label_diameter.")
        self.label_diameters.textChanged.connect(
            lambda text: self.label_diameter.setEnabled(not text.strip()))
        self.ocp_diameter = QLineEdit("9")
        self.ocp_diameter.setValidator(QRegularExpressionValidator(
            QRegularExpression(INT_LIST_TYPING_PATTERN)))
        self.ocp_diameter.setToolTip("Particle diameter of each class in voxels, separated by "
                                     "commas, e.g. 7,7,9 for three classes")
        self.norm_type = combo(NORM_TYPES, "standardization", "Intensity normalisation")

        form = QFormLayout()
        form.addRow("Dataset name", self.dset_name)
        form.addRow("Base path", self.base_path)
        form.addRow("Coordinates", hbox(self.coord_path, self.coord_format, stretch_first=True))
        form.addRow("Tomograms", hbox(self.tomo_path, self.tomo_format, stretch_first=True))
        form.addRow("Number of classes", self.num_cls)
        form.addRow("Label type / diameter", hbox(self.label_type, self.label_diameter))
        form.addRow("Label diameter per class", self.label_diameters)
        form.addRow("Particle diameters (ocp)", self.ocp_diameter)
        form.addRow("Normalisation", self.norm_type)

        self.load_button = QPushButton("Load configs...")
        self.save_button = QPushButton("Save configs...")
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        buttons = QHBoxLayout()
        for b in (self.load_button, self.save_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)

        settings = group_box("Dataset", form, buttons)
        self.result_table = table(["id", "tomogram", "particles"])
        results = group_box("Tomograms found", self.result_table)

        self.panel = JobPanel("Preprocessing", job_stage="preprocess", form=PREPROCESS)
        job_tab_layout(self, settings, results, self.panel, (420, 260))

        self.load_button.clicked.connect(lambda: self.load_config())
        self.save_button.clicked.connect(lambda: self.save_config())
        self.run_button.clicked.connect(self.run)
        self.panel.running_changed.connect(lambda running: self.run_button.setEnabled(not running))
        self.panel.status_message.connect(self.status_message)
        self.tomo_path.changed.connect(lambda _text: self.show_found_tomograms())

    # -- config <-> fields ---------------------------------------------------------------------
    def to_config(self) -> PreprocessConfig:
        """The config of the fields (raises DeepETPickerError naming a bad field)."""
        per_class = _number_list(self.label_diameters.text()) or None
        return PreprocessConfig(
            dset_name=self.dset_name.text().strip(),
            base_path=self.base_path.text(),
            coord_path=self.coord_path.text(),
            coord_format=self.coord_format.currentData(),
            tomo_path=self.tomo_path.text(),
            tomo_format=self.tomo_format.currentData(),
            num_cls=self.num_cls.value(),
            label_type=self.label_type.currentData(),
            label_diameter=None if per_class else self.label_diameter.value(),
            label_diameters=per_class,
            ocp_diameter=_number_list(self.ocp_diameter.text()),
            norm_type=self.norm_type.currentData(),
            source="Preprocessing tab")

    def set_config(self, cfg: PreprocessConfig) -> None:
        """Fill the fields from a config."""
        self.dset_name.setText(cfg.dset_name)
        self.base_path.setText(cfg.base_path)
        self.coord_path.setText(cfg.coord_path)
        set_combo(self.coord_format, cfg.coord_format)
        self.tomo_path.setText(cfg.tomo_path)
        if not set_combo(self.tomo_format, cfg.tomo_format):
            self.tomo_format.addItem(cfg.tomo_format, cfg.tomo_format)
            set_combo(self.tomo_format, cfg.tomo_format)
        self.num_cls.setValue(cfg.num_cls)
        set_combo(self.label_type, cfg.label_type)
        self.label_diameter.setValue(cfg.label_diameter)
        self.label_diameters.setText(",".join(str(d) for d in cfg.label_diameters or ()))
        self.ocp_diameter.setText(",".join(str(d) for d in cfg.ocp_diameter))
        set_combo(self.norm_type, cfg.norm_type)

    def load_config(self, path: Union[str, Path, None] = None) -> bool:
        """Read a preprocessing config (a dialog asks for the file without ``path``)."""
        cfg, path = dialogs.load_config_file(self, load_preprocess_config,
                                             "Load preprocessing config", path)
        if cfg is None:
            return False
        self.set_config(cfg)
        self.config_path = path
        self.status_message.emit(f"Loaded {path}")
        self.show_dataset(cfg)
        return True

    def save_config(self, path: Union[str, Path, None] = None) -> bool:
        """Write the fields as a config file (original format)."""
        saved = dialogs.save_config_file(self, self.to_config, "Save preprocessing config", path,
                                         form=PREPROCESS)
        if saved is None:
            return False
        self.config_path = saved
        self.status_message.emit(f"Saved {saved}")
        return True

    # -- running -------------------------------------------------------------------------------
    def run(self) -> bool:
        """Check the fields and start preprocessing in the background."""
        try:
            cfg = self.to_config()
            cfg.validate(check_paths=True)
        except DeepETPickerError as exc:
            dialogs.show_form_error(self, "Check the settings", str(exc), PREPROCESS)
            return False
        from deepetpicker.preprocess.job import preprocess

        return self.panel.run(preprocess, cfg, on_success=self._on_done,
                              name="preprocessing") is not None

    def _on_done(self, result) -> None:
        self.config_path = Path(result.config_path)
        self.panel.append_log(result.summary())
        unlabelled = [stem for stem in result.tomograms if stem not in result.labelled]
        self.show_dataset(self.to_config(), unlabelled)
        self.preprocessed.emit(str(result.config_path))

    def show_dataset(self, cfg: PreprocessConfig, unlabelled: Sequence[str] = ()) -> None:
        """List the dataset's preprocessed tomograms (if it was preprocessed already) and
        the ``unlabelled`` stems (normalised only); before preprocessing, the tomograms in
        the tomogram folder."""
        try:
            rows = dataset_rows(cfg.coords_dir, cfg.coord_format, cfg.num_cls)
        except DeepETPickerError:
            rows = []
        rows += [(None, stem, {}) for stem in unlabelled]
        if not rows:
            rows = found_rows(cfg.tomo_path)
        fill_dataset_table(self.result_table, rows, cfg.num_cls)

    def show_found_tomograms(self) -> int:
        """List the tomograms in the Tomograms folder as soon as it names a folder (not yet
        preprocessed); returns how many. The list is empty while the field names no folder
        of tomograms."""
        rows = found_rows(self.tomo_path.text())
        fill_dataset_table(self.result_table, rows, self.num_cls.value())
        return len(rows)
