"""The GUI tests never wait on a modal dialog: one nobody answers fails the test instead."""

from __future__ import annotations

import os
from pathlib import Path

from PyQt5.QtWidgets import QDialog, QFileDialog, QMessageBox

pytest_plugins = ["pytester"]


def test_unanswered_boxes_fail_the_test_instead_of_waiting(pytester, monkeypatch) -> None:
    """A test that opens a message box, a file dialog or a dialog's exec_ without answering
    it fails (and does not hang); one that answers with the ``dialogs`` fixture passes."""
    pytester.makeconftest('pytest_plugins = ["gui_fixtures"]\n')
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", f"{here}{os.pathsep}{here.parent}")
    pytester.makepyfile(
        test_boxes="""
from PyQt5.QtWidgets import QDialog, QFileDialog, QMessageBox, QApplication

app = QApplication.instance() or QApplication([])

def test_box():
    QMessageBox.warning(None, "Careful", "text")

def test_file():
    QFileDialog.getOpenFileName(None, "Open", "", "")

def test_exec():
    QDialog().exec_()

def test_answered(dialogs):
    QMessageBox.warning(None, "Careful", "text")
    assert dialogs.kinds() == ["warning"]
""")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=120)
    # each of the three fails when it ends (an error in its teardown); none waits
    result.assert_outcomes(passed=4, errors=3)
    result.stdout.fnmatch_lines(["*modal dialog*QMessageBox.warning('Careful')*",
                                 "*modal dialog*QFileDialog.getOpenFileName('Open')*",
                                 "*modal dialog*QDialog.exec_*"])


def test_guard_notes_each_dialog_and_answers_cancel(qapp, no_modal_dialogs) -> None:
    """The stand-ins answer as Cancel would and note each dialog opened."""
    assert QMessageBox.question(None, "Sure?", "?") == QMessageBox.Cancel
    assert QFileDialog.getExistingDirectory(None, "Folder") == ""
    assert QDialog().exec_() == QDialog.Rejected
    assert len(no_modal_dialogs) == 3
    no_modal_dialogs.clear()   # seen here on purpose: the test passes
