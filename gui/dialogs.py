"""The few message boxes the application shows, in one place.

All go through :class:`QMessageBox`'s static functions, so a test can replace those and no
modal box ever blocks.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable, Optional, Union

from PyQt5.QtWidgets import QDialog, QFileDialog, QMessageBox, QWidget

from deepetpicker.config import ConfigWarning, PreprocessConfig, save_config, warning_line
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.dataset import CHECKPOINT_SUFFIXES, TOMOGRAM_SUFFIXES
from deepetpicker.io.zarr_tomogram import is_zarr_path
from gui.form_terms import speak_form

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
TOMO_FILTER = "Tomograms (" + " ".join(f"*{s}" for s in TOMOGRAM_SUFFIXES) + ");;All files (*)"
CONFIG_FILTER = "Config files (*.py);;All files (*)"
COPICK_FILTER = "copick configs (*.json);;All files (*)"
CHECKPOINT_FILTER = ("Checkpoints (" + " ".join(f"*{s}" for s in CHECKPOINT_SUFFIXES)
                     + ");;All files (*)")


def show_error(parent: Optional[QWidget], title: str, message: str) -> None:
    """An error the user can act on; ``message`` comes from the core and says what to do."""
    QMessageBox.critical(parent, title, message)


def show_form_error(parent: Optional[QWidget], title: str, message: str, form: str) -> None:
    """An error about settings typed in a form: the config keys and options the message names
    are shown as the labels of ``form``'s fields (see :mod:`gui.form_terms`)."""
    show_error(parent, title, speak_form(message, form))


def show_warning(parent: Optional[QWidget], title: str, message: str) -> None:
    QMessageBox.warning(parent, title, message)


_last_warnings: tuple = ("", 0.0)   # (text, time) of the last config-warning box


def show_config_warnings(parent: Optional[QWidget], caught: list[warnings.WarningMessage]
                         ) -> list[str]:
    """Show the ConfigWarnings among ``caught`` (recorded warnings) in one box, each as the
    line the command line prints; other warnings go on as usual. Returns the lines. The same
    box is not shown twice in a row within a few seconds (one file loaded into two tabs)."""
    global _last_warnings
    lines = []
    for w in caught:
        if issubclass(w.category, ConfigWarning):
            lines.append(warning_line(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if lines:
        text = "\n".join(dict.fromkeys(lines))
        now = time.monotonic()
        if _last_warnings[0] != text or now - _last_warnings[1] > 5.0:
            show_warning(parent, "Config warnings", text)
        _last_warnings = (text, now)
    return lines


def show_info(parent: Optional[QWidget], title: str, message: str) -> None:
    QMessageBox.information(parent, title, message)


def ask_yes_no(parent: Optional[QWidget], title: str, question: str,
               default_yes: bool = False) -> bool:
    """True when the user answers Yes."""
    default = QMessageBox.Yes if default_yes else QMessageBox.No
    answer = QMessageBox.question(parent, title, question, QMessageBox.Yes | QMessageBox.No,
                                  default)
    return answer == QMessageBox.Yes


def ask_save_discard_cancel(parent: Optional[QWidget], title: str, question: str) -> str:
    """``SAVE``, ``DISCARD`` or ``CANCEL`` for unsaved work."""
    answer = QMessageBox.question(parent, title, question,
                                  QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel,
                                  QMessageBox.Save)
    if answer == QMessageBox.Save:
        return SAVE
    if answer == QMessageBox.Discard:
        return DISCARD
    return CANCEL


class TomogramDialog(QFileDialog):
    """Choose a tomogram (or, with ``many``, several): volume files or OME-Zarr stores, which
    are folders (``NAME.zarr``). Opening a Zarr folder takes it as a tomogram; opening any
    other folder enters it. Qt's own dialog on every platform, since native ones cannot return
    a folder from a file choice. ``chosen`` holds the paths taken."""

    def __init__(self, parent: Optional[QWidget], title: str, start: str = "",
                 many: bool = False):
        super().__init__(parent, title, start, TOMO_FILTER)
        self.setOption(QFileDialog.DontUseNativeDialog, True)
        self.setFileMode(QFileDialog.ExistingFiles if many else QFileDialog.ExistingFile)
        self.setAcceptMode(QFileDialog.AcceptOpen)
        self.chosen: list[str] = []

    def accept(self) -> None:
        picked = self.selectedFiles()
        if picked and all(Path(p).is_file() or (Path(p).is_dir() and is_zarr_path(p))
                          for p in picked):
            self.chosen = list(picked)
            QDialog.accept(self)
            return
        super().accept()  # enters a plain folder, or explains what is wrong


def choose_tomogram_file(parent: Optional[QWidget], title: str, start: str = "") -> str:
    """The tomogram (file or ``.zarr`` folder) the user chose, or "" when cancelled."""
    dialog = TomogramDialog(parent, title, start)
    return dialog.chosen[0] if dialog.exec_() == QDialog.Accepted and dialog.chosen else ""


def choose_tomogram_files(parent: Optional[QWidget], title: str, start: str = "") -> list[str]:
    """The tomograms (files and ``.zarr`` folders) the user chose; empty when cancelled."""
    dialog = TomogramDialog(parent, title, start, many=True)
    return list(dialog.chosen) if dialog.exec_() == QDialog.Accepted else []


def load_config_file(parent: Optional[QWidget], loader: Callable, title: str,
                     path: Union[str, Path, None] = None
                     ) -> tuple[Optional[PreprocessConfig], Optional[Path]]:
    """Read a config with ``loader`` (a file dialog asks without ``path``).

    Returns ``(config, path)``, or ``(None, None)`` when cancelled or unreadable (the error
    shown in a dialog). Config warnings (unknown or repeated keys) are shown in a box.
    """
    if path is None:
        path, _ = QFileDialog.getOpenFileName(parent, title, "", CONFIG_FILTER)
        if not path:
            return None, None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConfigWarning)
            cfg = loader(path)
    except DeepETPickerError as exc:
        show_error(parent, "Cannot load the config", str(exc))
        return None, None
    show_config_warnings(parent, caught)
    return cfg, Path(path)


def save_config_file(parent: Optional[QWidget], to_config: Callable, title: str,
                     path: Union[str, Path, None] = None, form: str = "") -> Optional[Path]:
    """Write the config that ``to_config()`` builds from a tab's fields, in the original
    format (a file dialog asks without ``path``, starting at ``base_path/configs/<name>.py``).
    Errors name the fields of ``form`` (see :mod:`gui.form_terms`).

    Returns the path written, or None when cancelled or refused (the error shown).
    """
    try:
        cfg = to_config()
    except DeepETPickerError as exc:
        show_form_error(parent, "Check the settings", str(exc), form)
        return None
    if path is None:
        start = str(cfg.configs_dir / f"{cfg.dset_name}.py") if cfg.base_path else ""
        path, _ = QFileDialog.getSaveFileName(parent, title, start, "Config files (*.py)")
        if not path:
            return None
    try:
        save_config(cfg, path)
    except (DeepETPickerError, OSError) as exc:
        show_form_error(parent, "Cannot save the config", str(exc), form)
        return None
    return Path(path)
