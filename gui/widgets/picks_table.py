"""The table of picks beside the slice views: select a row to jump there, Delete to remove."""

from __future__ import annotations

from typing import Optional

import numpy as np
from PyQt5.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, Qt, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from gui.display import ClassStyles
from gui.picks_model import PicksModel

COLUMNS = ("#", "class", "x", "y", "z", "score")


class PicksTableModel(QAbstractTableModel):
    """Read-only Qt view of a :class:`PicksModel` (one row per pick)."""

    def __init__(self, picks: PicksModel, styles: ClassStyles, parent=None) -> None:
        super().__init__(parent)
        self.picks = picks
        self.styles = styles
        picks.changed.connect(self.reload)

    def reload(self) -> None:
        self.beginResetModel()
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self.picks)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self.picks):
            return None
        row = self.picks.rows[index.row()]
        col = index.column()
        if role == Qt.DisplayRole:
            if col == 0:
                return str(index.row() + 1)
            if col == 1:
                return str(int(row[0]))
            if col in (2, 3, 4):  # voxels: whole numbers as such, else one decimal
                value = float(row[col - 1])
                return f"{value:.0f}" if value == round(value) else f"{value:.1f}"
            return f"{row[4]:.3f}" if self.picks.has_scores else ""
        if role == Qt.ForegroundRole and col == 1:
            return QColor(self.styles.colour(int(row[0])))
        if role == Qt.TextAlignmentRole:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None


class PicksTable(QTableView):
    """Rows of picks; ``pick_activated(index)`` when the user selects one, Delete removes
    the selected picks (through the undo stack)."""

    pick_activated = pyqtSignal(int)
    #: Delete (the key or the button) with no row selected
    nothing_to_delete = pyqtSignal()

    def __init__(self, picks: PicksModel, styles: ClassStyles, parent=None) -> None:
        super().__init__(parent)
        self.picks = picks
        self.table_model = PicksTableModel(picks, styles, self)
        self.setModel(self.table_model)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(20)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.setAlternatingRowColors(True)
        self._quiet = False
        self._kept: list[int] = []
        self.clicked.connect(lambda index: self.pick_activated.emit(index.row()))
        self._connect_selection()
        # a reset (after every edit) clears Qt's selection: keep the rows selected, which
        # still name the same picks unless picks were added or deleted (see clear_selection)
        self.table_model.modelAboutToBeReset.connect(self._keep_selection)
        self.table_model.modelReset.connect(self._connect_selection)
        self.table_model.modelReset.connect(self._restore_selection)

    def _keep_selection(self) -> None:
        self._kept = self.selected_rows() if self.selectionModel() is not None else []

    def _restore_selection(self) -> None:
        kept, self._kept = self._kept, []
        rows = [r for r in kept if r < self.table_model.rowCount()]
        if not rows:
            return
        self._quiet = True
        try:
            flags = QItemSelectionModel.Select | QItemSelectionModel.Rows
            for row in rows:
                self.selectionModel().select(self.table_model.index(row, 0), flags)
        finally:
            self._quiet = False

    def clear_selection(self) -> None:
        """Select no row (row numbers changed: picks were added or deleted)."""
        self._quiet = True
        try:
            self.clearSelection()
            self._kept = []
        finally:
            self._quiet = False

    def _connect_selection(self) -> None:
        selection = self.selectionModel()
        if selection is not None:
            try:
                selection.currentRowChanged.disconnect(self._on_current)
            except TypeError:
                pass
            selection.currentRowChanged.connect(self._on_current)

    def _on_current(self, current, _previous) -> None:
        if current.isValid() and not self._quiet:
            self.pick_activated.emit(current.row())

    def selected_rows(self) -> list[int]:
        return sorted({index.row() for index in self.selectionModel().selectedRows()})

    def show_pick(self, index: int) -> None:
        """Select and scroll to row ``index`` without emitting ``pick_activated``."""
        self._quiet = True
        try:
            if 0 <= index < self.table_model.rowCount():
                self.selectRow(index)
                self.scrollTo(self.table_model.index(index, 0),
                              QAbstractItemView.PositionAtCenter)
            else:
                self.clearSelection()
        finally:
            self._quiet = False

    def delete_selected(self) -> Optional[np.ndarray]:
        """Delete the picks of the selected rows; with none selected emit
        ``nothing_to_delete`` and return None."""
        rows = self.selected_rows()
        if not rows:
            self.nothing_to_delete.emit()
            return None
        self.picks.remove(rows)
        return np.asarray(rows)

    def keyPressEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        if ev.key() in (Qt.Key_Delete, Qt.Key_Backspace):
            self.delete_selected()
            ev.accept()
        else:
            super().keyPressEvent(ev)
