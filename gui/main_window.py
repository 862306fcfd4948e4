"""The main window: four tabs in workflow order, a status bar, and a careful close."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

from PyQt5.QtCore import QSettings, Qt
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QApplication, QMainWindow, QTabWidget

from deepetpicker import __version__
from deepetpicker.config import TrainConfig, load_config
from deepetpicker.errors import DeepETPickerError
from gui import dialogs
from gui.tabs.infer_tab import InferTab
from gui.tabs.preprocess_tab import PreprocessTab
from gui.tabs.train_tab import TrainTab
from gui.tabs.viewer_tab import ViewerTab

if TYPE_CHECKING:
    from gui.widgets.job_panel import JobPanel

log = logging.getLogger("deepetpicker.gui")

APP_NAME = "DeepETPicker"
TAB_NAMES = ("Preprocessing", "Training", "Inference", "Particle Visualization")


class MainWindow(QMainWindow):
    """Preprocessing, Training, Inference and Particle Visualization tabs."""

    def __init__(self, settings: Optional[QSettings] = None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.preprocess_tab = PreprocessTab()
        self.train_tab = TrainTab()
        self.infer_tab = InferTab()
        self.viewer_tab = ViewerTab(settings)
        self.tabs = QTabWidget()
        for tab, name in zip(self.all_tabs(), TAB_NAMES):
            self.tabs.addTab(tab, name)
            tab.status_message.connect(self.show_status)
        self.setCentralWidget(self.tabs)
        self.statusBar().showMessage("Ready")
        self._build_menus()

        self.preprocess_tab.preprocessed.connect(self._on_preprocessed)
        self.train_tab.trained.connect(self._on_trained)
        self.infer_tab.open_in_viewer.connect(self.show_in_viewer)
        self.viewer_tab.title_changed.connect(self.update_title)
        self.update_title()
        self.resize(1360, 860)

    def _build_menus(self) -> None:
        """File, Edit, View and Help: the viewer's own actions (the commands of its buttons
        and shortcuts), which also bring the Particle Visualization tab to the front."""
        viewer = self.viewer_tab
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(viewer.open_action)
        file_menu.addAction(viewer.load_picks_action)
        file_menu.addSeparator()
        file_menu.addAction(viewer.save_action)
        file_menu.addAction(viewer.save_as_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setShortcutContext(Qt.ApplicationShortcut)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        for action in (viewer.undo_action, viewer.redo_action, viewer.delete_action):
            edit_menu.addAction(action)
        view_menu = bar.addMenu("&View")
        view_menu.addAction(viewer.reset_zoom_action)
        help_menu = bar.addMenu("&Help")
        self.about_action = QAction("&About DeepETPicker", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)
        for action in (viewer.open_action, viewer.load_picks_action, viewer.save_action,
                       viewer.save_as_action, viewer.undo_action, viewer.redo_action,
                       viewer.delete_action, viewer.reset_zoom_action):
            action.triggered.connect(self.show_viewer)
        # the window's shortcut for Open, also on the other tabs
        viewer.open_action.setShortcutContext(Qt.WindowShortcut)
        self.addAction(viewer.open_action)

    def show_viewer(self) -> None:
        """Bring the Particle Visualization tab to the front."""
        self.tabs.setCurrentWidget(self.viewer_tab)

    def show_about(self) -> None:
        dialogs.show_info(self, f"About {APP_NAME}",
                          f"{APP_NAME} {__version__}\n\nParticle picking in cryo-electron "
                          f"tomograms with a 3-D network: preprocessing, training, inference "
                          f"and a viewer to check and correct the picks.")

    def all_tabs(self) -> tuple[PreprocessTab, TrainTab, InferTab, ViewerTab]:
        return (self.preprocess_tab, self.train_tab, self.infer_tab, self.viewer_tab)

    def job_panels(self) -> tuple[JobPanel, ...]:
        return (self.preprocess_tab.panel, self.train_tab.panel, self.infer_tab.panel)

    # -- title and status --------------------------------------------------------------------
    def update_title(self) -> None:
        doc = self.viewer_tab.document_title()
        self.setWindowTitle(f"{APP_NAME} {__version__}" + (f" - {doc}" if doc else ""))

    def show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)

    # -- wiring between tabs -----------------------------------------------------------------
    def _on_preprocessed(self, config_path: str) -> None:
        self.train_tab.load_config(config_path)

    def _on_trained(self, config_path: str, weights: str) -> None:
        self.infer_tab.set_inputs(config_path, weights)

    def show_in_viewer(self, tomogram: str, picks: str = "") -> bool:
        """Open a tomogram (and picks) in the Particle Visualization tab and show it."""
        self.tabs.setCurrentWidget(self.viewer_tab)
        return self.viewer_tab.open_tomogram(tomogram, picks=picks or None)

    def open_config(self, path: Union[str, Path]) -> bool:
        """Load a config file into the tabs it belongs to (``deepetpicker gui CONFIG``)."""
        try:
            cfg = load_config(path)
        except DeepETPickerError as exc:
            dialogs.show_error(self, "Cannot load the config", str(exc))
            return False
        if isinstance(cfg, TrainConfig):
            self.train_tab.load_config(path)
            self.infer_tab.set_inputs(path)
            self.tabs.setCurrentWidget(self.train_tab)
        else:
            self.preprocess_tab.load_config(path)
            self.train_tab.load_config(path)
            self.tabs.setCurrentWidget(self.preprocess_tab)
        self.show_status(f"Loaded {Path(path).name}")
        return True

    # -- closing -----------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        running = [p for p in self.job_panels() if p.running]
        if running:
            names = ", ".join(p.title for p in running)
            if not dialogs.ask_yes_no(self, "Quit while a job runs?",
                                      f"{names} is still running. Stop it and quit? Finished "
                                      f"outputs are kept."):
                event.ignore()
                return
        if not self.viewer_tab.maybe_keep_work("Quit"):
            event.ignore()
            return
        self.stop_jobs(running)
        event.accept()

    def stop_jobs(self, panels: Optional[Sequence[JobPanel]] = None, timeout_s: float = 30.0
                  ) -> bool:
        """Cancel the running jobs and wait until their threads have ended."""
        panels = [p for p in (panels if panels is not None else self.job_panels()) if p.running]
        for panel in panels:
            panel.stop()
        deadline = time.monotonic() + timeout_s
        for panel in panels:
            while panel.running and time.monotonic() < deadline:
                panel.wait(100)
                QApplication.processEvents()
            if panel.running:
                log.warning("%s did not stop within %.0f s", panel.title, timeout_s)
                return False
        return True
