"""The Inference tab: pick particles with trained weights in tomogram files or the runs of a
copick project, list the results, convert formats."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Union

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QPushButton,
    QStackedWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from deepetpicker.config import TrainConfig, load_train_config
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import FORMAT_SPECS, picks_file_filter, spoken_list
from deepetpicker.io.formats import COPICK_SESSION, COPICK_USER
from deepetpicker.io.tomogram import TOMOGRAM_SUFFIXES, find_tomograms
from gui import dialogs
from gui.form_terms import INFER
from gui.widgets.fields import (
    MultipleSpinBox,
    PathField,
    combo,
    device_combo,
    dspin,
    group_box,
    hbox,
    job_tab_layout,
    set_combo,
    spin,
    table,
)
from gui.widgets.job_panel import JobPanel

#: where the tomograms to pick come from (the pages of the input box, in this order)
SOURCES = (("tomogram files", "files"), ("copick project", "copick"))
FILE_HEADERS = ("tomogram", "picks", "file")
COPICK_HEADERS = ("run", "picks", "stored in")


class InferTab(QWidget):
    """Settings and results of the inference job, plus pick file conversion."""

    status_message = pyqtSignal(str)
    #: (tomogram path, picks path): show a result in the Particle Visualization tab
    open_in_viewer = pyqtSignal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.config: Optional[TrainConfig] = None
        self.results: list[tuple[str, str, str]] = []  # (stem, tomogram, picks file)
        #: (copick config, tomo type, voxel spacing) of the copick results listed, else None
        self.results_project: Optional[tuple[str, str, float]] = None

        self.config_field = PathField("open", "Training configs (*.py);;All files (*)",
                                      "optional: the weights' train config")
        self.config_field.setToolTip("The training config of the weights (train_configs=...). "
                                     "Without one, the settings stored in the weights are "
                                     "used (patch size, classes, particle diameters, "
                                     "normalisation, tile and pad size); then list the "
                                     "tomograms to pick.")
        self.weights_field = PathField("open", dialogs.CHECKPOINT_FILTER,
                                       "best.pth of a training run")
        self.tomo_list = QListWidget()
        self.tomo_list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.tomo_list.setToolTip("Tomograms or folders to pick; empty: the config's "
                                  "normalised tomograms")
        self.add_files = QPushButton("Add files...")
        self.add_folder = QPushButton("Add folder...")
        self.remove_tomos = QPushButton("Remove")
        self.source = combo(SOURCES, "files", "Pick tomogram files and folders, or the runs "
                                              "of a copick project (the picks are stored in "
                                              "the project)")
        self.copick_config = PathField("open", dialogs.COPICK_FILTER, "the project's config JSON")
        self.copick_tomo_type = QComboBox()
        self.copick_tomo_type.setEditable(True)
        self.copick_tomo_type.setToolTip("Tomogram type to pick (e.g. wbp, denoised)")
        self.copick_spacing = dspin(0.001, 100000.0, 10.0, 3, 0.5,
                                    "Voxel spacing of the tomograms in Angstrom")
        self.copick_runs = QLineEdit()
        self.copick_runs.setPlaceholderText("all runs; or names, e.g. TS_1, TS_2")
        self.copick_user = QLineEdit()
        self.copick_user.setPlaceholderText(COPICK_USER)
        self.copick_user.setToolTip("copick user id the picks are stored under")
        self.copick_session = QLineEdit()
        self.copick_session.setPlaceholderText(COPICK_SESSION)
        self.copick_session.setToolTip("copick session id the picks are stored under")
        self.copick_overwrite = QCheckBox("replace earlier picks of this user and session")
        self.mask_field = PathField("open_or_folder", dialogs.TOMO_FILTER,
                                    "optional: region to pick in")
        self.mask_field.setToolTip("A mask volume of the tomogram's shape (non-zero = pick "
                                   "there), or a folder of masks named like the tomograms; "
                                   "tiles outside it are not scanned")
        self.patch_size = MultipleSpinBox(8, 16, 512, 72)
        self.patch_size.setToolTip("Tile edge in voxels (a multiple of 8)")
        self.pad_size = spin(0, 64, 12, "Margin dropped from each tile (6-12 sensible)")
        self.t_seg = dspin(0.0, 1.0, 0.5, 2, 0.05, "Score threshold of the segmentation")
        self.t_lm = dspin(0.0, 1.0, 0.1, 2, 0.05, "Minimum score of a local maximum")
        self.t_dist = dspin(0.0, 500.0, 0.0, 1, 1.0, "Picks closer than this (voxels) are one "
                                                     "particle; auto = half of each class's "
                                                     "particle diameter")
        self.localize = combo([("all classes, then classify", "foreground"),
                               ("each class on its own", "class")], "foreground",
                              "How particles are found: in the summed class maps and then "
                              "given the most probable class (finds particles whose "
                              "probability is split over similar classes), or in each class's "
                              "score map on its own (the paper's rule)")
        self.t_dist.setSpecialValueText("auto")
        self.min_score = dspin(-0.01, 0.99, -0.01, 2, 0.05,
                               "Drop picks scoring below this; 'tuned': the thresholds tuned "
                               "per class on the validation tomograms in training (stored in "
                               "the weights); 0 keeps every pick")
        self.min_score.setSpecialValueText("tuned")
        self.device = device_combo("Where to run the network")
        self.out_dir = PathField("folder", placeholder="default: base_path/runs/<name>/"
                                                       "predictions, or predictions beside "
                                                       "the weights")
        self.out_format = combo([("coords only", "")] +
                                [(f"coords + {s.name}", s.name) for s in FORMAT_SPECS
                                 if s.name != "coords"],
                                "", "Also write the picks in this format")
        self.save_scores = QCheckBox("save score maps (MRC)")
        self.tta = QCheckBox("Test-time augmentation")
        self.tta.setToolTip("Average the scores over the 8 mirrorings of z, y and x of every "
                            "tile before picking; the scan takes 8 times longer")

        tomo_buttons = QHBoxLayout()
        for b in (self.add_files, self.add_folder, self.remove_tomos):
            tomo_buttons.addWidget(b)
        tomo_page = QWidget()
        tomo_box = QVBoxLayout(tomo_page)
        tomo_box.setContentsMargins(0, 0, 0, 0)
        tomo_box.addWidget(self.tomo_list)
        tomo_box.addLayout(tomo_buttons)
        copick_page = QWidget()
        cp = QFormLayout(copick_page)
        cp.setContentsMargins(0, 0, 0, 0)
        cp.addRow("Config", self.copick_config)
        cp.addRow("Tomograms", hbox("type", self.copick_tomo_type, "voxel spacing (A)",
                                    self.copick_spacing))
        cp.addRow("Runs", self.copick_runs)
        cp.addRow("Store as", hbox("user", self.copick_user, "session", self.copick_session))
        cp.addRow("", self.copick_overwrite)
        self.source_pages = QStackedWidget()
        self.source_pages.addWidget(tomo_page)
        self.source_pages.addWidget(copick_page)

        form = QFormLayout()
        form.addRow("Train config", self.config_field)
        form.addRow("Weights", self.weights_field)
        form.addRow("Input", self.source)
        form.addRow(self.source_pages)
        form.addRow("Mask", self.mask_field)
        form.addRow("Tiles", hbox("patch", self.patch_size, "pad", self.pad_size, self.tta))
        form.addRow("Thresholds", hbox("t_seg", self.t_seg, "t_lm", self.t_lm,
                                       "t_dist", self.t_dist, "min score", self.min_score))
        form.addRow("Find particles", self.localize)
        form.addRow("Device", self.device)
        form.addRow("Output folder", self.out_dir)
        form.addRow("Output format", hbox(self.out_format, self.save_scores))
        self.run_button = QPushButton("Run")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        settings = group_box("Inference", form, buttons)
        self.results_table = table(FILE_HEADERS)
        self.results_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.results_table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.show_button = QPushButton("Show in Particle Visualization")
        self.show_button.setEnabled(False)
        results = group_box("Results", self.results_table, self.show_button)

        convert = QGroupBox("Convert pick files")
        self.convert_list = QListWidget()
        self.convert_list.setMaximumHeight(80)
        self.convert_add = QPushButton("Add files...")
        self.convert_format = combo([(f"{s.name}: {s.label}", s.name) for s in FORMAT_SPECS],
                                    "star", "Format to write")
        needing = spoken_list([s.name for s in FORMAT_SPECS if s.needs_voxel_size])
        self.convert_voxel = dspin(0.0, 1000.0, 0.0, 3, 0.1, f"Voxel size in Angstrom (needed "
                                                             f"by {needing}); 0 = from the "
                                                             f"files")
        self.convert_voxel.setSpecialValueText("from files")
        self.convert_out = PathField("folder", placeholder="output folder")
        self.convert_button = QPushButton("Convert")
        cf = QFormLayout(convert)
        cf.addRow("Pick files", hbox(self.convert_list, self.convert_add, stretch_first=True))
        cf.addRow("To format", self.convert_format)
        cf.addRow("Voxel size (A)", self.convert_voxel)
        cf.addRow("Output folder", hbox(self.convert_out, self.convert_button,
                                        stretch_first=True))

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(results, 1)
        rl.addWidget(convert)
        # the bar follows the tiles of each tomogram; at the end it counts the tomograms
        self.panel = JobPanel("Inference", bar_stages=("scan",), job_stage="predict",
                              form=INFER)
        job_tab_layout(self, settings, right, self.panel, (480, 220))

        self.config_field.edit.editingFinished.connect(self._config_edited)
        self.config_field.button.clicked.connect(self._config_edited)
        self.add_files.clicked.connect(self._choose_files)
        self.add_folder.clicked.connect(self._choose_folder)
        self.remove_tomos.clicked.connect(self._remove_selected)
        self.source.currentIndexChanged.connect(self.source_pages.setCurrentIndex)
        self.copick_config.edit.editingFinished.connect(self._copick_config_edited)
        self.copick_config.button.clicked.connect(self._copick_config_edited)
        self.run_button.clicked.connect(lambda: self.run())
        self.panel.running_changed.connect(lambda running: self.run_button.setEnabled(not running))
        self.panel.status_message.connect(self.status_message)
        self.results_table.itemSelectionChanged.connect(
            lambda: self.show_button.setEnabled(bool(self.results_table.selectedItems())))
        self.results_table.itemDoubleClicked.connect(lambda _item: self.show_selected())
        self.show_button.clicked.connect(self.show_selected)
        self.convert_add.clicked.connect(self._choose_convert_files)
        self.convert_button.clicked.connect(lambda: self.convert())

    # -- inputs ------------------------------------------------------------------------------
    def set_inputs(self, config_path: Union[str, Path],
                   weights_path: Union[str, Path, None] = None) -> bool:
        """Use a training config (and weights); fills the tile and threshold fields."""
        self.config_field.setText(str(config_path))
        if weights_path is not None:
            self.weights_field.setText(str(weights_path))
        return self._config_edited()

    def _config_edited(self) -> bool:
        path = self.config_field.text()
        if not path:
            self.config = None  # the settings stored in the weights
            return False
        try:
            cfg = load_train_config(path)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot load the training config", str(exc))
            self.config = None
            return False
        self.config = cfg
        self.patch_size.setValue(cfg.patch_size)
        self.pad_size.setValue(cfg.padding_size)
        self.t_seg.setValue(cfg.seg_thresh)
        self.t_lm.setValue(cfg.t_lm)
        self.t_dist.setValue(cfg.t_dist or 0.0)
        set_combo(self.localize, cfg.localize)
        if not self.weights_field.text():
            from deepetpicker.io.dataset import BEST_CHECKPOINT

            best = Path(cfg.run_dir) / BEST_CHECKPOINT
            if best.is_file():
                self.weights_field.setText(str(best))
        return True

    def add_tomograms(self, paths: Iterable[Union[str, Path]]) -> None:
        """Add tomogram files or folders to the list."""
        present = {self.tomo_list.item(i).text() for i in range(self.tomo_list.count())}
        for path in paths:
            if str(path) not in present:
                self.tomo_list.addItem(str(path))

    def tomograms(self) -> list[str]:
        return [self.tomo_list.item(i).text() for i in range(self.tomo_list.count())]

    def _choose_files(self) -> None:
        self.add_tomograms(dialogs.choose_tomogram_files(self, "Add tomograms"))

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of tomograms")
        if path:
            self.add_folder_tomograms(path)

    def add_folder_tomograms(self, folder: Union[str, Path]) -> int:
        """List the tomograms of ``folder`` (so you see what will be picked); returns how
        many were found."""
        try:
            found = find_tomograms(folder)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot add the folder", str(exc))
            return 0
        if not found:
            suffixes = ", ".join(TOMOGRAM_SUFFIXES)
            dialogs.show_error(self, "No tomograms found",
                               f"{folder} holds no tomograms ({suffixes}). Choose the folder "
                               f"with your tomograms, or add the files one by one.")
            return 0
        self.add_tomograms([str(p) for p in found])
        return len(found)

    def _remove_selected(self) -> None:
        for item in self.tomo_list.selectedItems():
            self.tomo_list.takeItem(self.tomo_list.row(item))

    def set_copick_project(self, config: Union[str, Path]) -> bool:
        """Pick the runs of the copick project ``config`` (its config JSON); offers the
        tomogram types of its first run."""
        set_combo(self.source, "copick")
        self.copick_config.setText(str(config))
        return self._copick_config_edited()

    def _copick_config_edited(self) -> bool:
        path = self.copick_config.text()
        if not path:
            return False
        from deepetpicker.io.copick_project import open_project, run_contents

        try:
            runs = open_project(path).runs
            tomograms = run_contents(runs[0]).tomograms if runs else []
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot open the copick project", str(exc))
            return False
        typed = self.copick_tomo_type.currentText()
        self.copick_tomo_type.clear()
        self.copick_tomo_type.addItems(list(dict.fromkeys(t for t, _ in tomograms)))
        if typed:
            self.copick_tomo_type.setCurrentText(typed)
        if tomograms and not any(abs(vs - self.copick_spacing.value()) < 1e-3
                                 for _, vs in tomograms):
            self.copick_spacing.setValue(tomograms[0][1])
        self.status_message.emit(f"copick project {Path(path).name}: {len(runs)} run(s)")
        return True

    def copick_arguments(self) -> dict:
        """The copick keyword arguments of :func:`deepetpicker.copick_jobs.
        predict_into_project` that the copick fields describe."""
        config = self.copick_config.text()
        if not config:
            raise DeepETPickerError("Choose the copick project's config JSON (copick project: "
                                    "Config).")
        tomo_type = self.copick_tomo_type.currentText().strip()
        if not tomo_type:
            raise DeepETPickerError("Give the type of the tomograms to pick in the copick "
                                    "project (e.g. wbp or denoised).")
        runs = [r for r in self.copick_runs.text().replace(",", " ").split() if r]
        return {"copick_config": config, "tomo_type": tomo_type,
                "voxel_spacing": self.copick_spacing.value(), "runs": runs or None,
                "user_id": self.copick_user.text().strip() or COPICK_USER,
                "session_id": self.copick_session.text().strip() or COPICK_SESSION,
                "overwrite": self.copick_overwrite.isChecked()}

    # -- running -------------------------------------------------------------------------------
    def uses_copick(self) -> bool:
        """True when the input is a copick project (else tomogram files)."""
        return self.source.currentData() == "copick"

    def job_arguments(self) -> tuple[Optional[TrainConfig], dict]:
        """The config and keyword arguments of :func:`deepetpicker.predict.job.predict` that the
        fields describe, or with a copick project as the input those of
        :func:`deepetpicker.copick_jobs.predict_into_project` (raises DeepETPickerError naming
        what is missing or wrong).

        The training config is optional: without one the config is None and the job takes
        the settings stored in the weights (patch and pad size too; the device and the
        picking thresholds come from the fields), as ``deepetpicker predict`` does without
        ``--config``."""
        config_path = self.config_field.text()
        if config_path and self.config is None and not self._config_edited():
            raise DeepETPickerError(
                f"The training config {config_path} could not be loaded (see the message "
                f"before). Correct it, or clear the Train config field to use the settings "
                f"stored in the weights.")
        if not config_path:
            self.config = None
        weights = self.weights_field.text()
        if not weights:
            raise DeepETPickerError("Choose the trained weights (best.pth of a training run).")
        from deepetpicker.io.dataset import BEST_CHECKPOINT
        from deepetpicker.model.checkpoint import resolve_checkpoint

        weights = str(resolve_checkpoint(weights, prefer=BEST_CHECKPOINT))
        device = self.device.currentText().strip()
        cfg = None
        if self.config is not None:
            data = self.config.to_dict()
            data.update(patch_size=self.patch_size.value(), padding_size=self.pad_size.value(),
                        device=device)
            cfg = TrainConfig.from_dict(data, source=self.config.source)
        elif not self.uses_copick() and not self.tomograms():
            raise DeepETPickerError(
                f"Add the tomograms to pick (Add files... or Add folder...): without a training "
                f"config the weights {Path(weights).name} do not say where the dataset is.")
        picking = {"t_seg": self.t_seg.value(), "t_lm": self.t_lm.value(),
                   "localize": self.localize.currentData()}
        if self.t_dist.value() > 0:
            picking["t_dist"] = self.t_dist.value()
        if self.min_score.value() >= 0:           # else the thresholds stored in the weights
            picking["min_score"] = self.min_score.value()
        kwargs = {"weights": weights, "out": self.out_dir.text() or None, "picking": picking,
                  "save_scores": self.save_scores.isChecked(), "tta": self.tta.isChecked(),
                  "formats": [self.out_format.currentData()] if self.out_format.currentData()
                  else [], "mask": self.mask_field.text() or None}
        if cfg is None:  # the tiles are the weights' own; the device is the field's
            kwargs["device"] = device or None
        if self.uses_copick():
            kwargs.update(self.copick_arguments())
        else:
            kwargs["tomograms"] = self.tomograms() or None
        return cfg, kwargs

    def run(self) -> bool:
        """Start inference in the background."""
        try:
            cfg, kwargs = self.job_arguments()
        except DeepETPickerError as exc:
            dialogs.show_form_error(self, "Check the settings", str(exc), INFER)
            return False
        if "copick_config" in kwargs:
            from deepetpicker.copick_jobs import predict_into_project

            project = (kwargs["copick_config"], kwargs["tomo_type"], kwargs["voxel_spacing"])
            self.panel.job_stage = "copick"  # one per run
            return self.panel.run(predict_into_project, cfg,
                                  on_success=lambda result: self._on_copick_done(result,
                                                                                 project),
                                  name="inference into the copick project",
                                  **kwargs) is not None
        from deepetpicker.predict.job import predict

        self.panel.job_stage = "predict"  # one per tomogram
        return self.panel.run(predict, cfg, on_success=self._on_done, name="inference",
                              **kwargs) is not None

    def _show_results(self, headers: Iterable[str],
                      rows: list[tuple[tuple[str, str, str], str]]) -> None:
        """Fill the results table: ``rows`` of (cells, tooltip)."""
        table = self.results_table
        table.clearContents()
        table.setHorizontalHeaderLabels(list(headers))
        table.setRowCount(len(rows))
        for r, (cells, tip) in enumerate(rows):
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
                item.setToolTip(tip)
                table.setItem(r, c, item)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)

    def _on_done(self, result) -> None:
        self.panel.append_log(result.summary())
        self.results_project = None
        self.results = [(Path(output).stem, str(tomogram), str(output))
                        for tomogram, output in result.pairs()]
        rows = []
        for stem, _tomo, output in self.results:
            counts = result.counts.get(stem, {})
            text = ", ".join(f"class {c}: {n}" for c, n in sorted(counts.items())) or "0"
            rows.append(((stem, f"{sum(counts.values())} ({text})", Path(output).name),
                         output))
        self._show_results(FILE_HEADERS, rows)
        for path, reason in result.failed.items():
            self.panel.append_log(f"skipped {path}: {reason}")
        if result.failed:
            dialogs.show_form_error(self, "Some tomograms were skipped",
                                    "\n\n".join(f"{p}: {why}"
                                                for p, why in result.failed.items()), INFER)

    def _on_copick_done(self, result, project: tuple[str, str, float]) -> None:
        """List per run the picks stored in the copick project (and where their ``.coords``
        copy went), then the runs skipped."""
        self.panel.append_log(result.summary())
        self.results_project = project
        place = f"copick {result.user_id}/{result.session_id}"
        self.results, rows = [], []
        for run, counts in result.written.items():
            coords = str(result.outputs[run])
            text = ", ".join(f"{name}: {n}" for name, n in counts.items()) or "0"
            self.results.append((run, "", coords))
            rows.append(((run, f"{sum(counts.values())} ({text})", place),
                         f"user {result.user_id}, session {result.session_id} in "
                         f"{project[0]}; also {coords}"))
        for run in result.no_tomogram:
            self.results.append((run, "", ""))
            rows.append(((run, "-", "skipped: no tomogram"),
                         f"no {project[1]!r} tomogram at {project[2]:g} A"))
        for run, reason in result.failed.items():
            self.results.append((run, "", ""))
            rows.append(((run, "-", "failed"), reason))
        self._show_results(COPICK_HEADERS, rows)
        if result.failed:
            dialogs.show_error(self, "Some runs were skipped",
                               "\n\n".join(f"{r}: {why}" for r, why in result.failed.items()))

    def show_selected(self) -> bool:
        """Open the selected result in the Particle Visualization tab."""
        rows = {i.row() for i in self.results_table.selectedItems()}
        if not rows:
            return False
        stem, tomo, picks = self.results[min(rows)]
        if not picks:
            return False
        if not tomo and self.results_project is not None:
            from deepetpicker.io.copick_project import open_project, project_runs, run_tomogram_path

            config, tomo_type, spacing = self.results_project
            try:
                run = project_runs(open_project(config), [stem], config)[0]
                tomo = str(run_tomogram_path(run, tomo_type, spacing, config))
            except DeepETPickerError as exc:
                dialogs.show_error(self, "Cannot open the run's tomogram", str(exc))
                return False
        self.open_in_viewer.emit(tomo, picks)
        return True

    # -- conversion ------------------------------------------------------------------------------
    def _choose_convert_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Pick files to convert", "",
                                                picks_file_filter())
        for p in paths:
            self.convert_list.addItem(p)

    def convert(self) -> list[Path]:
        """Convert the listed pick files; returns the files written."""
        from deepetpicker.ops.convert import convert

        files = [self.convert_list.item(i).text() for i in range(self.convert_list.count())]
        try:
            if not files:
                raise DeepETPickerError("Add the pick files to convert first (Add files...).")
            if not self.convert_out.text():
                raise DeepETPickerError("Choose the output folder for the converted files.")
            voxel = self.convert_voxel.value() or None
            written = convert(files, self.convert_format.currentData(), self.convert_out.text(),
                              voxel_size=voxel)
        except (DeepETPickerError, OSError) as exc:
            dialogs.show_error(self, "Conversion failed", str(exc))
            return []
        names = ", ".join(Path(p).name for p in written)
        self.panel.append_log(f"converted {len(files)} file(s) to {names}")
        self.status_message.emit(f"Wrote {len(written)} file(s) to {self.convert_out.text()}")
        return [Path(p) for p in written]
