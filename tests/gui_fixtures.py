"""Shared pieces of the GUI tests: offscreen Qt, recorded message boxes, small data, mouse events.

The fixtures reach every test through ``conftest.py`` (``pytest_plugins``); the helper
functions (``make_tomogram``, the mouse events) are imported by name.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402
from PyQt5.QtCore import QEvent, QPoint, QPointF, QSettings, Qt  # noqa: E402
from PyQt5.QtGui import QColor, QMouseEvent  # noqa: E402
from PyQt5.QtWidgets import (  # noqa: E402
    QApplication,
    QColorDialog,
    QDialog,
    QFileDialog,
    QInputDialog,
    QMessageBox,
)

from deepetpicker.io.picks import Picks, write_picks  # noqa: E402
from deepetpicker.io.tomogram import write_tomogram  # noqa: E402

# Simulated mouse moves arrive faster than a person moves; let every one through.
pg.setConfigOption("mouseRateLimit", 0)


class DialogRecorder:
    """Stands in for QMessageBox's static functions: records each box, answers from a queue."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []
        self.answers: list = []
        self.default_answer = QMessageBox.No

    def _record(self, kind: str, title: str, text: str):
        self.shown.append((kind, str(title), str(text)))
        if kind == "question":
            return self.answers.pop(0) if self.answers else self.default_answer
        return QMessageBox.Ok

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.shown]

    def texts(self, kind: str | None = None) -> list[str]:
        return [text for k, _, text in self.shown if kind is None or k == kind]


#: the blocking static functions of Qt's standard dialogs, and what each returns on Cancel
_MODAL_FUNCTIONS = (
    (QMessageBox, ("critical", "warning", "information", "question", "about", "aboutQt"),
     QMessageBox.Cancel),
    (QFileDialog, ("getOpenFileName", "getSaveFileName"), ("", "")),
    (QFileDialog, ("getOpenFileNames",), ([], "")),
    (QFileDialog, ("getExistingDirectory",), ""),
    (QInputDialog, ("getText", "getItem", "getInt", "getDouble", "getMultiLineText"),
     ("", False)),
    (QColorDialog, ("getColor",), QColor),       # an invalid colour
)


@pytest.fixture(autouse=True)
def no_modal_dialogs(monkeypatch):
    """Every test fails, instead of waiting forever, when it opens a modal dialog nobody
    answers: the static functions of the standard dialogs and ``exec_`` of any QDialog are
    replaced by stand-ins that note the call and answer as Cancel would; the test fails at its
    end. A test that answers dialogs (the ``dialogs`` fixture, or its own ``monkeypatch``)
    replaces these stand-ins, which it is free to do."""
    opened: list[str] = []

    def stand_in(owner: str, name: str, answer):
        def refuse(*args, **kwargs):
            title = next((a for a in args if isinstance(a, str)), "")
            opened.append(f"{owner}.{name}({title!r})")
            return answer() if isinstance(answer, type) else answer
        return refuse

    for cls, names, answer in _MODAL_FUNCTIONS:
        for name in names:
            monkeypatch.setattr(cls, name, staticmethod(stand_in(cls.__name__, name, answer)))

    def exec_refused(self, *args, **kwargs):
        opened.append(f"{type(self).__name__}.exec_({self.windowTitle()!r})")
        return QDialog.Rejected

    for cls in (QDialog, QMessageBox, QFileDialog):
        for name in ("exec_", "exec"):
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, exec_refused)
    yield opened
    if opened:
        pytest.fail("the test opened a modal dialog that nobody answers (use the `dialogs` "
                    "fixture, or monkeypatch the dialog): " + ", ".join(opened),
                    pytrace=False)


@pytest.fixture
def dialogs(monkeypatch) -> DialogRecorder:
    """No modal box ever opens; tests read ``dialogs.shown`` and queue ``dialogs.answers``."""
    recorder = DialogRecorder()
    for kind in ("critical", "warning", "information", "question"):
        def fake(parent, title, text, *args, _kind=kind, **kwargs):
            return recorder._record(_kind, title, text)
        monkeypatch.setattr(QMessageBox, kind, staticmethod(fake))
    return recorder


@pytest.fixture
def settings(tmp_path) -> QSettings:
    """An application settings store that lives in the test's folder."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


def make_tomogram(shape=(12, 20, 28), centres=((6, 10, 14),), seed=0, radius=3.0):
    """A noisy float32 volume (z, y, x) with bright balls at ``centres`` given as (z, y, x)."""
    rng = np.random.default_rng(seed)
    vol = rng.normal(0.0, 0.2, size=shape).astype(np.float32)
    zz, yy, xx = np.indices(shape)
    for cz, cy, cx in centres:
        ball = (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        vol[ball] += 2.0
    return vol


@pytest.fixture
def tiny_tomogram(tmp_path) -> Path:
    """``tomo.mrc`` (12 x 20 x 28, z y x) with two particles and ``tomo.coords`` picking them."""
    centres = ((6, 10, 14), (4, 5, 22))
    path = tmp_path / "tomo.mrc"
    write_tomogram(path, make_tomogram(centres=centres), voxel_size=10.0)
    picks = Picks([1, 2], [(c[2], c[1], c[0]) for c in centres], tomo_name="tomo")
    write_picks(tmp_path / "tomo.coords", picks)
    return path


# --------------------------------------------------------------------------------------------
# Mouse events sent straight to a widget (QTest cannot hold a button down during a move)
# --------------------------------------------------------------------------------------------
def _send(widget, kind, pos, button, buttons, modifiers=Qt.NoModifier) -> None:
    pos = QPointF(pos)
    global_pos = QPointF(widget.mapToGlobal(pos.toPoint()))
    event = QMouseEvent(kind, pos, global_pos, button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def mouse_click(widget, pos: QPoint, button=Qt.LeftButton, modifiers=Qt.NoModifier) -> None:
    _send(widget, QEvent.MouseButtonPress, pos, button, button, modifiers)
    _send(widget, QEvent.MouseButtonRelease, pos, button, Qt.NoButton, modifiers)


def mouse_double_click(widget, pos: QPoint, button=Qt.LeftButton) -> None:
    _send(widget, QEvent.MouseButtonPress, pos, button, button)
    _send(widget, QEvent.MouseButtonRelease, pos, button, Qt.NoButton)
    _send(widget, QEvent.MouseButtonDblClick, pos, button, button)
    _send(widget, QEvent.MouseButtonRelease, pos, button, Qt.NoButton)


def mouse_drag(widget, start: QPoint, end: QPoint, button=Qt.LeftButton, steps: int = 5) -> None:
    _send(widget, QEvent.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        t = i / steps
        p = QPointF(start) * (1 - t) + QPointF(end) * t
        _send(widget, QEvent.MouseMove, p, Qt.NoButton, button)
    _send(widget, QEvent.MouseButtonRelease, end, button, Qt.NoButton)


def mouse_move(widget, pos: QPoint) -> None:
    _send(widget, QEvent.MouseMove, pos, Qt.NoButton, Qt.NoButton)
