"""Per-class colour and circle diameter, edited in a small table."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (
    QColorDialog,
    QDoubleSpinBox,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from gui.display import ClassStyles


class ClassTable(QTableWidget):
    """One row per class: id, colour (click to change), diameter in voxels."""

    styles_changed = pyqtSignal()

    def __init__(self, styles: ClassStyles, parent=None) -> None:
        super().__init__(0, 3, parent)
        self.styles = styles
        self.setHorizontalHeaderLabels(["class", "colour", "diameter"])
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(24)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.set_class_count(1)

    def set_class_count(self, n: int) -> None:
        """Show rows for classes 1..n (keeps the styles of the classes already shown)."""
        n = max(1, int(n))
        old = self.rowCount()
        self.setRowCount(n)
        for row in range(old, n):
            cls = row + 1
            item = QTableWidgetItem(str(cls))
            item.setFlags(Qt.ItemIsEnabled)
            item.setTextAlignment(Qt.AlignCenter)
            self.setItem(row, 0, item)
            button = QPushButton()
            button.setToolTip(f"Colour of class {cls}; click to change")
            button.clicked.connect(lambda _=False, c=cls: self.choose_colour(c))
            self.setCellWidget(row, 1, button)
            spin = QDoubleSpinBox()
            spin.setRange(1.0, 500.0)
            spin.setDecimals(1)
            spin.setSuffix(" vx")
            spin.setValue(self.styles.diameter(cls))
            spin.setToolTip(f"Particle diameter of class {cls} in voxels (circle size)")
            spin.valueChanged.connect(lambda value, c=cls: self.set_diameter(c, value))
            self.setCellWidget(row, 2, spin)
            self._paint_button(cls)
        self._fit_height()

    def _fit_height(self, max_rows: int = 6) -> None:
        """As tall as its rows (up to ``max_rows``, then it scrolls), no empty space."""
        rows = min(self.rowCount(), max_rows)
        height = (self.horizontalHeader().sizeHint().height()
                  + rows * self.verticalHeader().defaultSectionSize() + 2 * self.frameWidth())
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)

    def class_count(self) -> int:
        return self.rowCount()

    def _paint_button(self, cls: int) -> None:
        button = self.cellWidget(cls - 1, 1)
        if button is not None:
            colour = self.styles.colour(cls)
            button.setText(colour)
            button.setStyleSheet(f"background-color: {colour}; color: "
                                 f"{'#000' if QColor(colour).lightness() > 128 else '#fff'};")

    def set_colour(self, cls: int, colour: str) -> None:
        self.styles.colours[int(cls)] = QColor(colour).name()
        self._paint_button(int(cls))
        self.styles_changed.emit()

    def choose_colour(self, cls: int) -> None:
        colour = QColorDialog.getColor(QColor(self.styles.colour(cls)), self,
                                       f"Colour of class {cls}")
        if colour.isValid():
            self.set_colour(cls, colour.name())

    def set_diameter(self, cls: int, value: float) -> None:
        self.styles.diameters[int(cls)] = float(value)
        spin = self.cellWidget(int(cls) - 1, 2)
        if spin is not None and abs(spin.value() - value) > 1e-9:
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.styles_changed.emit()
