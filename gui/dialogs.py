"""The few message boxes the application shows, in one place.

All go through :class:`QMessageBox`'s static functions, so a test can replace those and no
modal box ever blocks.
"""

from __future__ import annotations

from typing import Optional

from PyQt5.QtWidgets import QMessageBox, QWidget

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


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
