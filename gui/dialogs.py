"""The few message boxes the application shows, in one place.

All go through :class:`QMessageBox`'s static functions, so a test can replace those and no
modal box ever blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PyQt5.QtWidgets import QFileDialog, QMessageBox, QWidget

from deepetpicker.config import save_config
from deepetpicker.errors import DeepETPickerError

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
CONFIG_FILTER = "Config files (*.py);;All files (*)"


def show_error(parent: Optional[QWidget], title: str, message: str) -> None:
    """An error the user can act on; ``message`` comes from the core and says what to do."""
    QMessageBox.critical(parent, title, message)


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


def load_config_file(parent: Optional[QWidget], loader: Callable, title: str, path=None):
    """Read a config with ``loader`` (a file dialog asks without ``path``).

    Returns ``(config, path)``, or ``(None, None)`` when cancelled or unreadable (the error
    shown in a dialog).
    """
    if path is None:
        path, _ = QFileDialog.getOpenFileName(parent, title, "", CONFIG_FILTER)
        if not path:
            return None, None
    try:
        return loader(path), Path(path)
    except DeepETPickerError as exc:
        show_error(parent, "Cannot load the config", str(exc))
        return None, None


def save_config_file(parent: Optional[QWidget], to_config: Callable, title: str,
                     path=None) -> Optional[Path]:
    """Write the config that ``to_config()`` builds from a tab's fields, in the original
    format (a file dialog asks without ``path``, starting at ``base_path/configs/<name>.py``).

    Returns the path written, or None when cancelled or refused (the error shown).
    """
    try:
        cfg = to_config()
    except DeepETPickerError as exc:
        show_error(parent, "Check the settings", str(exc))
        return None
    if path is None:
        start = str(cfg.configs_dir / f"{cfg.dset_name}.py") if cfg.base_path else ""
        path, _ = QFileDialog.getSaveFileName(parent, title, start, "Config files (*.py)")
        if not path:
            return None
    try:
        save_config(cfg, path)
    except (DeepETPickerError, OSError) as exc:
        show_error(parent, "Cannot save the config", str(exc))
        return None
    return Path(path)
