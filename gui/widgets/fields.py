"""Small widgets shared by the job tabs: path pickers, range-checked number fields, boxes and
tables."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QValidator
from PyQt5.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

#: the devices offered where a job runs the network (the box is editable: cuda:2, ...)
DEVICES = ("auto", "cpu", "cuda", "cuda:0", "cuda:1")


class PathField(QWidget):
    """A line edit with a "Browse..." button; ``mode`` is ``folder``, ``open`` or ``save``,
    or ``open_or_folder`` (a "File..." and a "Folder..." button)."""

    changed = pyqtSignal(str)

    def __init__(self, mode: str = "folder", file_filter: str = "", placeholder: str = "",
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        if mode not in ("folder", "open", "save", "open_or_folder"):
            raise ValueError(mode)
        self.mode = mode
        self.file_filter = file_filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self.changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        if mode == "open_or_folder":
            self.button = QPushButton("File...")
            self.button.clicked.connect(lambda: self.browse("open"))
            self.folder_button = QPushButton("Folder...")
            self.folder_button.clicked.connect(lambda: self.browse("folder"))
            layout.addWidget(self.button)
            layout.addWidget(self.folder_button)
        else:
            self.button = QPushButton("Browse...")
            self.button.clicked.connect(lambda: self.browse())
            layout.addWidget(self.button)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt style, like QLineEdit
        self.edit.setText(str(text))

    def browse(self, mode: Optional[str] = None) -> None:
        """Ask for the path with a file dialog (``mode``: the field's, or ``open`` /
        ``folder`` for the two buttons of ``open_or_folder``)."""
        start = self.text()
        mode = mode or self.mode
        if mode == "folder":
            path = QFileDialog.getExistingDirectory(self, "Choose a folder", start)
        elif mode == "open":
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", start, self.file_filter)
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Save as", start, self.file_filter)
        if path:
            self.setText(path)


class MultipleSpinBox(QSpinBox):
    """A spin box that accepts only multiples of ``multiple`` (e.g. patch sizes of 8)."""

    def __init__(self, multiple: int, minimum: int, maximum: int, value: int,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.multiple = int(multiple)
        self.setRange(minimum, maximum)
        self.setSingleStep(self.multiple)
        self.setValue(value)

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        state, text, pos = super().validate(text, pos)
        if state == QValidator.Acceptable:
            try:
                value = int(self.valueFromText(text))
            except ValueError:
                return QValidator.Intermediate, text, pos
            if value % self.multiple:
                return QValidator.Intermediate, text, pos
        return state, text, pos

    def fixup(self, text: str) -> str:
        try:
            value = int(text.strip())
        except ValueError:
            return str(self.value())
        value = int(round(value / self.multiple)) * self.multiple
        value = max(self.minimum(), min(self.maximum(), value))
        return str(value)


def spin(minimum: int, maximum: int, value: int, tip: str = "", suffix: str = "") -> QSpinBox:
    """An integer spin box with a range, a value and a tooltip."""
    box = QSpinBox()
    box.setRange(minimum, maximum)
    box.setValue(value)
    box.setToolTip(tip)
    if suffix:
        box.setSuffix(suffix)
    return box


def dspin(minimum: float, maximum: float, value: float, decimals: int = 3, step: float = 0.1,
          tip: str = "") -> QDoubleSpinBox:
    """A floating-point spin box with a range, a value and a tooltip."""
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def combo(items: Sequence[Union[str, tuple[str, Any]]], current: Any = None, tip: str = ""
          ) -> QComboBox:
    """A combo box of ``(label, value)`` pairs (or plain strings); value in ``currentData()``."""
    box = QComboBox()
    for item in items:
        label, value = item if isinstance(item, tuple) else (item, item)
        box.addItem(label, value)
    if current is not None:
        set_combo(box, current)
    box.setToolTip(tip)
    return box


def device_combo(tip: str) -> QComboBox:
    """The editable box of :data:`DEVICES` (default ``auto``) where a job runs the network."""
    box = combo(DEVICES, "auto", tip)
    box.setEditable(True)
    return box


def set_combo(box: QComboBox, value: Any) -> bool:
    """Select the entry whose value (or label) is ``value``; False when there is none."""
    for i in range(box.count()):
        if box.itemData(i) == value or box.itemText(i) == value:
            box.setCurrentIndex(i)
            return True
    return False


def group_box(title: str, *parts) -> QGroupBox:
    """A titled box holding ``parts`` (widgets or layouts) one above the other."""
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    for part in parts:
        if isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part)
    return box


def table(headers: Sequence[str]) -> QTableWidget:
    """An empty table with these column headers and no row numbers."""
    widget = QTableWidget(0, len(headers))
    widget.setHorizontalHeaderLabels(list(headers))
    widget.verticalHeader().setVisible(False)
    return widget


def hbox(*items, stretch_first: bool = False) -> QHBoxLayout:
    """A row of widgets, left to right; a string becomes a label. With ``stretch_first`` the
    first widget takes the spare width."""
    row = QHBoxLayout()
    for i, item in enumerate(items):
        widget = QLabel(item) if isinstance(item, str) else item
        row.addWidget(widget, 1 if (stretch_first and i == 0) else 0)
    return row


def job_tab_layout(owner: QWidget, settings: QWidget, results: QWidget, below: QWidget,
                   sizes: Sequence[int]) -> QSplitter:
    """Lay out a job tab: ``settings`` (3/5 of the width) beside ``results`` (2/5) on top,
    ``below`` (the job panel) under them, in a vertical splitter of heights ``sizes``."""
    top = QWidget()
    row = QHBoxLayout(top)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(settings, 3)
    row.addWidget(results, 2)
    splitter = QSplitter(Qt.Vertical)
    splitter.addWidget(top)
    splitter.addWidget(below)
    splitter.setSizes(list(sizes))
    layout = QVBoxLayout(owner)
    layout.addWidget(splitter)
    return splitter
