"""The Training tab: choose tomograms and settings, train, watch loss and F1 per epoch."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Union

import pyqtgraph as pg
from PyQt5.QtCore import QRegularExpression, Qt, pyqtSignal
from PyQt5.QtGui import QRegularExpressionValidator
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QWidget,
)

from deepetpicker.config import (
    DEFAULT_AUGMENT,
    LOSS_NAMES,
    NETWORK_PRESETS,
    PreprocessConfig,
    TrainConfig,
    format_ids,
    load_config,
    parse_ids,
    save_config,
)
from deepetpicker.config.grammar import IDS_TYPING_PATTERN, INT_LIST_TYPING_PATTERN, NAME_PATTERN
from deepetpicker.errors import DeepETPickerError
from gui import dialogs
from gui.form_terms import TRAIN
from gui.tabs.preprocess_tab import dataset_rows, fill_dataset_table
from gui.widgets.fields import (
    MultipleSpinBox,
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

MODELS = tuple((f"ResUNet{' ' + name if name != 'default' else ''} "
                f"({', '.join(map(str, f_maps))})", name)
               for name, f_maps in NETWORK_PRESETS.items())
LOSSES = tuple((label, name) for name, (label, _) in LOSS_NAMES.items())
#: where training starts (the config's ``init``); a checkpoint chosen is added as an entry
STARTS = (("pretrained light network", "pretrained"), ("random weights", "scratch"))
#: probabilities used when a switch of a random augmentation is turned on
_ON_PROBABILITY = {k: v for k, v in DEFAULT_AUGMENT.items() if k in ("elastic", "rotate", "scale")}


class TrainTab(QWidget):
    """Training settings, the dataset list, live plots, and the training job."""

    status_message = pyqtSignal(str)
    #: (train config path, weights path) after a successful run
    trained = pyqtSignal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.base: Optional[PreprocessConfig] = None
        self.config_path: Optional[Path] = None
        self.history: list[dict] = []

        self.source_label = QLabel("Load a preprocessing config (or a training config) to "
                                   "start.")
        self.source_label.setWordWrap(True)
        self.dset_name = QLineEdit()
        self.dset_name.setValidator(QRegularExpressionValidator(QRegularExpression(NAME_PATTERN)))
        self.model_box = combo(MODELS, "default", "Network size; the light one is 3.4 MB and "
                                                  "almost as accurate")
        self.classes_label = QLabel("-")
        self.train_ids = QLineEdit()
        self.val_ids = QLineEdit()
        for edit, what in ((self.train_ids, "training"), (self.val_ids, "validation")):
            edit.setValidator(QRegularExpressionValidator(QRegularExpression(IDS_TYPING_PATTERN)))
            edit.setPlaceholderText("e.g. 0-7 or 0,2")
            edit.setToolTip(f"Ids of the {what} tomograms (see the table), e.g. 0-7 or 0,2")
        self.batch_size = spin(1, 512, 8, "Patches per training step")
        self.patch_size = MultipleSpinBox(8, 16, 512, 72)
        self.patch_size.setToolTip("Edge of the training patches in voxels (a multiple of 8; "
                                   "64 or more recommended)")
        self.padding_size = spin(0, 64, 12, "Margin dropped from each tile at validation "
                                            "and inference (6-12 sensible)")
        self.lr = dspin(1e-6, 1.0, 5e-4, 6, 1e-4, "Peak learning rate of the one-cycle schedule")
        self.max_epochs = spin(1, 100000, 60, "Number of epochs")
        self.loss = combo(LOSSES, "dice", "Training loss")
        self.seed = spin(0, 2 ** 31 - 1, 0, "Random seed (same seed, same CPU run)")
        self.augment = {key: QCheckBox(key) for key in ("mirror", "crop", "elastic", "rotate",
                                                        "scale")}
        for key, box in self.augment.items():
            box.setChecked(key in ("mirror", "crop") or DEFAULT_AUGMENT[key] > 0)
            box.setToolTip(f"Use {key} augmentation")
        self.init = combo(STARTS, "pretrained",
                          "Starting weights: the pretrained light network (used with the light "
                          "model; other models start from random weights, and the log says "
                          "so), random weights, or a checkpoint of an earlier run")
        self.init_button = QPushButton("Checkpoint...")
        self.init_button.setToolTip("Start from the weights of a checkpoint (best.pth of an "
                                    "earlier run, or the original program's .ckpt)")
        self.device = device_combo("Where to train: auto uses a GPU when there is one")
        self.gpu_ids = QLineEdit("0")
        self.gpu_ids.setValidator(QRegularExpressionValidator(
            QRegularExpression(INT_LIST_TYPING_PATTERN)))
        self.gpu_ids.setToolTip("GPU ids, e.g. 0,1 (several GPUs: use torchrun, see "
                                "docs/workflow.md)")

        form = QFormLayout()
        form.addRow(self.source_label)
        form.addRow("Run name", self.dset_name)
        form.addRow("Model", self.model_box)
        form.addRow("Start from", hbox(self.init, self.init_button, stretch_first=True))
        form.addRow("Classes", self.classes_label)
        form.addRow("Train ids", self.train_ids)
        form.addRow("Val ids", self.val_ids)
        form.addRow("Sizes", hbox("batch", self.batch_size, "patch", self.patch_size,
                                  "pad", self.padding_size))
        form.addRow("Schedule", hbox("lr", self.lr, "epochs", self.max_epochs,
                                     "seed", self.seed))
        form.addRow("Loss", self.loss)
        form.addRow("Augmentation", hbox(*self.augment.values()))
        form.addRow("Device", hbox(self.device, "GPU ids", self.gpu_ids, stretch_first=True))

        self.load_button = QPushButton("Load configs...")
        self.save_button = QPushButton("Save configs...")
        self.train_button = QPushButton("Train")
        self.resume_button = QPushButton("Resume...")
        buttons = QHBoxLayout()
        for b in (self.load_button, self.save_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.resume_button)

        settings = group_box("Training settings", form, buttons)
        self.dataset_table = table(["id", "tomogram", "particles"])
        self.dataset_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.to_train = QPushButton("Selected -> train")
        self.to_val = QPushButton("Selected -> val")
        row = QHBoxLayout()
        row.addWidget(self.to_train)
        row.addWidget(self.to_val)
        dataset = group_box("Dataset", self.dataset_table, row)

        self.loss_plot = pg.PlotWidget(title="Loss per epoch")
        self.loss_plot.setBackground("w")
        self.loss_plot.addLegend(offset=(-10, 10), labelTextColor="#202020")
        self.loss_plot.setLabel("bottom", "epoch")
        self.train_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#4363d8", width=2),
                                               symbol="o", symbolSize=5, name="train loss")
        self.val_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#f58231", width=2),
                                             symbol="o", symbolSize=5, name="val loss")
        self.f1_plot = pg.PlotWidget(title="Validation F1 per epoch")
        self.f1_plot.setBackground("w")
        self.f1_plot.addLegend(offset=(-10, -10), labelTextColor="#202020")
        self.f1_plot.setLabel("bottom", "epoch")
        self.f1_plot.setYRange(0, 1)
        self.f1_curve = self.f1_plot.plot([], [], pen=pg.mkPen("#3cb44b", width=2), symbol="o",
                                          symbolSize=5, name="localisation F1")
        self.class_curve = self.f1_plot.plot([], [], pen=pg.mkPen("#911eb4", width=2),
                                             symbol="t", symbolSize=6, name="class F1")
        for plot in (self.loss_plot, self.f1_plot):
            plot.setTitle(plot.plotItem.titleLabel.text, color="#202020", size="10pt")
            plot.showGrid(x=True, y=True, alpha=0.25)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen("#404040"))
                axis.setTextPen(pg.mkPen("#202020"))
                axis.enableAutoSIPrefix(False)  # losses as 0.5, not "500 (x0.001)"
        self.f1_plot.setLabel("left", "F1")
        self.loss_plot.setLabel("left", "loss")
        plots = QWidget()
        pl = QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.loss_plot)
        pl.addWidget(self.f1_plot)

        self.panel = JobPanel("Training", bar_stages=("train",), form=TRAIN)
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(plots)
        bottom.addWidget(self.panel)
        bottom.setSizes([640, 420])
        job_tab_layout(self, settings, dataset, bottom, (420, 300))

        self.load_button.clicked.connect(lambda: self.load_config())
        self.save_button.clicked.connect(lambda: self.save_config())
        self.train_button.clicked.connect(lambda: self.start())
        self.resume_button.clicked.connect(lambda: self.resume())
        self.init_button.clicked.connect(lambda: self.choose_start())
        self.to_train.clicked.connect(lambda: self._ids_from_selection(self.train_ids))
        self.to_val.clicked.connect(lambda: self._ids_from_selection(self.val_ids))
        self.panel.progress.connect(self._on_progress)
        self.panel.status_message.connect(self.status_message)
        self.panel.running_changed.connect(self._on_running)

    # -- config <-> fields ---------------------------------------------------------------------
    def set_config(self, cfg: PreprocessConfig) -> None:
        """Use a preprocessing config (new training) or a training config (its settings)."""
        self.base = cfg
        kind = "training" if isinstance(cfg, TrainConfig) else "preprocessing"
        self.source_label.setText(f"Dataset from the {kind} config of '{cfg.dset_name}' "
                                  f"under {cfg.base_path}")
        diam = ",".join(str(d) for d in cfg.ocp_diameter)
        self.classes_label.setText(f"{cfg.num_cls} (particle diameters {diam} voxels)")
        if isinstance(cfg, TrainConfig):
            self.dset_name.setText(cfg.dset_name)
            preset = [n for n, f in NETWORK_PRESETS.items() if list(f) == list(cfg.f_maps)]
            set_combo(self.model_box, preset[0] if preset else "default")
            self.set_start(cfg.init)
            self.train_ids.setText(format_ids(cfg.train_set_ids))
            self.val_ids.setText(format_ids(cfg.val_set_ids))
            self.batch_size.setValue(cfg.batch_size)
            self.patch_size.setValue(cfg.patch_size)
            self.padding_size.setValue(cfg.padding_size)
            self.lr.setValue(cfg.lr)
            self.max_epochs.setValue(cfg.max_epochs)
            set_combo(self.loss, cfg.loss)
            self.seed.setValue(cfg.seed)
            for key, box in self.augment.items():
                value = cfg.augment.get(key, DEFAULT_AUGMENT[key])
                box.setChecked(bool(value))
            if not set_combo(self.device, cfg.device):
                self.device.setEditText(cfg.device)
            self.gpu_ids.setText(",".join(str(g) for g in cfg.gpu_ids))
            coords = cfg.coords_dir
        else:
            name = cfg.dset_name
            self.dset_name.setText(name[:-len("_preprocess")] + "_train"
                                   if name.endswith("_preprocess") else name + "_train")
            coords = cfg.coords_dir
        try:
            rows = dataset_rows(coords, cfg.coord_format, cfg.num_cls)
        except DeepETPickerError as exc:
            rows = []
            self.panel.append_log(f"No dataset list yet: {exc}")
        fill_dataset_table(self.dataset_table, rows, cfg.num_cls)
        if isinstance(cfg, TrainConfig):
            self.show_run_log(cfg.run_dir)
        if rows and not self.train_ids.text():
            ids = [r[0] for r in rows]
            self.train_ids.setText(format_ids(ids[:-1] or ids))
            self.val_ids.setText(format_ids(ids[-1:]))

    def to_config(self) -> TrainConfig:
        """The training config of the fields (raises DeepETPickerError naming a bad field)."""
        if self.base is None:
            raise DeepETPickerError("No dataset yet: load the preprocessing config of your "
                                    "dataset (Load configs...) or run Preprocessing first.")
        for edit, key in ((self.train_ids, "train_set_ids"), (self.val_ids, "val_set_ids")):
            if not parse_ids(edit.text(), key=key, source="Training tab"):
                raise DeepETPickerError(f"Training tab: {key} is empty; give tomogram ids from "
                                        f"the dataset table, e.g. 0-7 or 0,2.")
        augment = copy.deepcopy(self.base.augment if isinstance(self.base, TrainConfig)
                                else DEFAULT_AUGMENT)
        for key, box in self.augment.items():
            if key in ("mirror", "crop"):
                augment[key] = box.isChecked()
            else:
                on = augment.get(key) or _ON_PROBABILITY[key]
                augment[key] = on if box.isChecked() else 0.0
        values = {
            "dset_name": self.dset_name.text().strip(),
            "model_name": "ResUNet",
            "f_maps": list(NETWORK_PRESETS[self.model_box.currentData()]),
            "batch_size": self.batch_size.value(),
            "patch_size": self.patch_size.value(),
            "padding_size": self.padding_size.value(),
            "lr": self.lr.value(),
            "max_epochs": self.max_epochs.value(),
            "loss": self.loss.currentData(),
            "seed": self.seed.value(),
            "init": self.init.currentData(),
            "augment": augment,
            "device": self.device.currentText().strip(),
            "gpu_ids": self.gpu_ids.text().strip() or "0",
        }
        if isinstance(self.base, TrainConfig):
            data = self.base.to_dict()
            data.update(values, train_set_ids=self.train_ids.text().strip(),
                        val_set_ids=self.val_ids.text().strip())
            return TrainConfig.from_dict(data, source="Training tab")
        return TrainConfig.from_preprocess(self.base, self.train_ids.text().strip(),
                                           self.val_ids.text().strip(), **values)

    def set_start(self, init: str) -> None:
        """Show ``init`` (``pretrained``, ``scratch`` or a checkpoint path) as the start."""
        if not set_combo(self.init, init):
            self.init.addItem(f"checkpoint {init}", init)
            self.init.setCurrentIndex(self.init.count() - 1)

    def choose_start(self) -> bool:
        """Ask for a checkpoint to start training from; False when none was chosen."""
        path, _ = QFileDialog.getOpenFileName(self, "Start training from a checkpoint", "",
                                              dialogs.CHECKPOINT_FILTER)
        if path:
            self.set_start(path)
        return bool(path)

    def load_config(self, path: Union[str, Path, None] = None) -> bool:
        """Read a preprocessing or training config (a dialog asks without ``path``)."""
        cfg, path = dialogs.load_config_file(self, load_config, "Load config", path)
        if cfg is None:
            return False
        self.set_config(cfg)
        self.config_path = path if isinstance(cfg, TrainConfig) else None
        self.status_message.emit(f"Loaded {path}")
        return True

    def save_config(self, path: Union[str, Path, None] = None) -> Optional[Path]:
        """Write the training config (default: ``base_path/configs/<run name>.py``)."""
        saved = dialogs.save_config_file(self, self.to_config, "Save training config", path,
                                         form=TRAIN)
        if saved is not None:
            self.config_path = saved
            self.status_message.emit(f"Saved {saved}")
        return saved

    # -- running -------------------------------------------------------------------------------
    def start(self, resume: Union[str, Path, None] = None) -> bool:
        """Save the config beside the dataset and start training (from ``resume``)."""
        try:
            cfg = self.to_config()
        except DeepETPickerError as exc:
            dialogs.show_form_error(self, "Check the settings", str(exc), TRAIN)
            return False
        path = cfg.configs_dir / f"{cfg.dset_name}.py"
        if path.is_file() and not self._is_train_config(path):
            dialogs.show_error(self, "Choose another run name",
                               f"Run name '{cfg.dset_name}': training would overwrite {path}, "
                               f"which is not a training config (the dataset's preprocessing "
                               f"config?). Choose another run name, e.g. "
                               f"'{cfg.dset_name}_train'.")
            return False
        try:
            save_config(cfg, path)
        except (DeepETPickerError, OSError) as exc:
            dialogs.show_form_error(self, "Cannot save the config", str(exc), TRAIN)
            return False
        self.config_path = path
        self.panel.append_log(f"training config saved to {path}")
        if resume is None:
            self.history = []
            self._draw_history()
        from deepetpicker.train.job import train

        return self.panel.run(train, cfg, resume=resume, on_success=self._on_done,
                              name="training") is not None

    @staticmethod
    def _is_train_config(path: Path) -> bool:
        try:
            return isinstance(load_config(path), TrainConfig)
        except DeepETPickerError:
            return False

    def resume(self, checkpoint: Union[str, Path, None] = None) -> bool:
        """Continue a run from its ``last.pth`` (a dialog asks without ``checkpoint``)."""
        if checkpoint is None:
            from deepetpicker.io.dataset import LAST_CHECKPOINT

            start = ""
            try:
                start = str(self.to_config().run_dir / LAST_CHECKPOINT)
            except DeepETPickerError:
                pass
            checkpoint, _ = QFileDialog.getOpenFileName(self, "Resume from checkpoint", start,
                                                        dialogs.CHECKPOINT_FILTER)
            if not checkpoint:
                return False
        return self.start(resume=checkpoint)

    def _on_running(self, running: bool) -> None:
        for b in (self.train_button, self.resume_button, self.load_button):
            b.setEnabled(not running)

    def _on_progress(self, event) -> None:
        if event.stage != "epoch" or not event.metrics:
            return
        epoch = int(event.metrics.get("epoch", event.done))
        self.history = [row for row in self.history if row["epoch"] < epoch]
        self.history.append({"epoch": epoch, **event.metrics})
        self._draw_history()

    def show_run_log(self, run_dir: Union[str, Path]) -> bool:
        """Plot the epochs of an earlier run from its metrics (if there are any)."""
        from deepetpicker.train.job import best_row, read_metrics, selection_f1

        try:
            history = read_metrics(run_dir)
        except DeepETPickerError as exc:
            self.panel.append_log(str(exc))
            return False
        if not history:
            return False
        self.history = history
        self._draw_history()
        last = history[-1]
        best = best_row(history)
        text = (f"Earlier run in {run_dir}: {len(history)} epoch(s), last train loss "
                f"{last.get('train_loss', float('nan')):.4f}")
        if best is not None:
            text += (f", best validation score {selection_f1(best):.3f} (epoch "
                     f"{best['epoch']})")
        self.panel.append_log(text)
        return True

    def _draw_history(self) -> None:
        from deepetpicker.train.job import selection_f1

        def series(value):
            pts = [(r["epoch"], value(r)) for r in self.history if value(r) is not None]
            return [p[0] for p in pts], [p[1] for p in pts]

        self.train_curve.setData(*series(lambda r: r.get("train_loss")))
        self.val_curve.setData(*series(lambda r: r.get("val_loss")))
        # with the detection thresholds tuned on validation; rows of earlier runs have the one
        # F1 that chose their best.pth
        self.f1_curve.setData(*series(lambda r: r.get("loc_f1", selection_f1(r))))
        self.class_curve.setData(*series(lambda r: r.get("class_f1")))

    def _on_done(self, result) -> None:
        self.panel.append_log(result.summary())
        weights = result.best_checkpoint or result.last_checkpoint
        if self.config_path is not None and weights is not None:
            self.trained.emit(str(self.config_path), str(weights))

    def _ids_from_selection(self, edit: QLineEdit) -> None:
        rows = sorted({i.row() for i in self.dataset_table.selectionModel().selectedRows()})
        ids = []
        for r in rows:
            item = self.dataset_table.item(r, 0)
            if item is not None and item.text().isdigit():
                ids.append(int(item.text()))
        if ids:
            edit.setText(format_ids(ids))
