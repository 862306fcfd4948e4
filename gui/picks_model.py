"""The picks being edited in the viewer: a table of rows plus an undo stack, no widgets.

Every edit (add, delete, move) is a :class:`QUndoCommand` on :attr:`PicksModel.undo_stack`, so
Ctrl+Z / Ctrl+Shift+Z work and the stack's clean state is the "saved" state. The model emits
``changed`` after every edit and ``dirty_changed`` when it moves away from or back to the
saved state. Reading and writing files goes through :mod:`deepetpicker.io` and
:mod:`deepetpicker.ops.picks_files`.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtWidgets import QUndoCommand, QUndoStack

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import save_file_filters, save_format_for_suffix, spoken_list
from deepetpicker.io.picks import PICK_SUFFIXES, Picks, write_picks
from deepetpicker.ops.picks_files import export_picks, read_pick_file
from deepetpicker.types import PathLike

#: "Save As" choices: (filter text, format name of deepetpicker.io.formats or None for the
#: plain tables written by deepetpicker.io.picks.write_picks, suffix).
SAVE_FILTERS = tuple((text, None if suffix in PICK_SUFFIXES else name, suffix)
                     for text, name, suffix in save_file_filters())

_drag_ids = itertools.count(1)


def new_drag_id() -> int:
    """An id shared by the moves of one mouse drag, so they undo as one step."""
    return next(_drag_ids)


def autosave_path(picks_path: PathLike) -> Path:
    """The hidden autosave file beside a pick file: ``dir/.name.autosave.coords``."""
    path = Path(picks_path)
    return path.with_name(f".{path.stem}.autosave.coords")


class _AddPick(QUndoCommand):
    def __init__(self, model: "PicksModel", row: np.ndarray) -> None:
        super().__init__(f"add pick at ({row[1]:.0f}, {row[2]:.0f}, {row[3]:.0f})")
        self.model, self.row = model, row

    def redo(self) -> None:
        self.model._insert(np.array([len(self.model)]), self.row[None, :])

    def undo(self) -> None:
        self.model._delete(np.array([len(self.model) - 1]))


class _DeletePicks(QUndoCommand):
    def __init__(self, model: "PicksModel", indices: np.ndarray) -> None:
        super().__init__(f"delete {len(indices)} pick(s)")
        self.model = model
        self.indices = np.sort(indices)
        self.rows = model.rows[self.indices].copy()

    def redo(self) -> None:
        self.model._delete(self.indices)

    def undo(self) -> None:
        self.model._insert(self.indices, self.rows)


class _MovePick(QUndoCommand):
    ID = 1001

    def __init__(self, model: "PicksModel", index: int, xyz: np.ndarray,
                 drag_id: Optional[int]) -> None:
        super().__init__("move pick")
        self.model, self.index, self.drag_id = model, index, drag_id
        self.old = model.rows[index, 1:4].copy()
        self.new = np.asarray(xyz, dtype=np.float64)

    def id(self) -> int:  # noqa: A003 - Qt's name
        return self.ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if (isinstance(other, _MovePick) and other.index == self.index
                and self.drag_id is not None and other.drag_id == self.drag_id):
            self.new = other.new
            return True
        return False

    def redo(self) -> None:
        self.model._set_xyz(self.index, self.new)

    def undo(self) -> None:
        self.model._set_xyz(self.index, self.old)


class PicksModel(QObject):
    """Picks of one tomogram: ``rows`` (N, 5) ``class x y z score`` plus undo/redo.

    ``has_scores`` says whether the table carries confidence scores (a predicted table); picks
    added by hand then get score 1. ``shape`` (z, y, x), when set, keeps added and moved picks
    inside the tomogram.
    """

    changed = pyqtSignal()
    #: picks were added, deleted or the table replaced: row numbers no longer name the same
    #: picks (emitted before ``changed``)
    rows_changed = pyqtSignal()
    dirty_changed = pyqtSignal(bool)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.rows = np.zeros((0, 5), dtype=np.float64)
        self.has_scores = False
        self.tomo_name = ""
        self.voxel_size: Optional[float] = None
        self.shape: Optional[tuple[int, int, int]] = None
        self.path: Optional[Path] = None
        self._unsaved_load = False  # a restored autosave counts as unsaved until saved
        self._was_dirty = False
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._emit_dirty)

    # -- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def dirty(self) -> bool:
        """True when there are edits that were not saved."""
        return self._unsaved_load or not self.undo_stack.isClean()

    def _emit_dirty(self, *_args) -> None:
        dirty = self.dirty
        if dirty != self._was_dirty:
            self._was_dirty = dirty
            self.dirty_changed.emit(dirty)

    @property
    def classes(self) -> np.ndarray:
        return self.rows[:, 0].astype(np.int64)

    @property
    def xyz(self) -> np.ndarray:
        return self.rows[:, 1:4]

    @property
    def scores(self) -> np.ndarray:
        """Scores; 1 for every pick of a table without scores."""
        return self.rows[:, 4]

    def to_picks(self) -> Picks:
        """The current picks as the core's table."""
        return Picks(self.classes, self.xyz.copy(),
                     self.scores.copy() if self.has_scores else None,
                     self.tomo_name, self.voxel_size)

    # -- replacing the whole table (not undoable; the new table is the saved state) ----------
    def set_picks(self, picks: Picks, path: Optional[PathLike] = None,
                  dirty: bool = False) -> None:
        """Show ``picks`` (from ``path``); with ``dirty`` the table counts as unsaved
        (a restored autosave)."""
        rows = np.zeros((len(picks), 5), dtype=np.float64)
        rows[:, 0] = picks.classes
        rows[:, 1:4] = picks.xyz
        rows[:, 4] = picks.scores if picks.scores is not None else 1.0
        self.rows = rows
        self.has_scores = picks.scores is not None
        self.tomo_name = picks.tomo_name or self.tomo_name
        if picks.voxel_size:
            self.voxel_size = picks.voxel_size
        self.path = Path(path) if path is not None else None
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self._unsaved_load = bool(dirty)
        self.rows_changed.emit()
        self.changed.emit()
        self._emit_dirty()

    def clear(self, tomo_name: str = "", shape: Optional[Sequence[int]] = None,
              voxel_size: Optional[float] = None) -> None:
        """An empty table for a newly opened tomogram."""
        self.tomo_name = tomo_name
        self.shape = tuple(int(s) for s in shape) if shape is not None else None
        self.voxel_size = voxel_size
        self.set_picks(Picks.empty(tomo_name, voxel_size))

    def load(self, path: PathLike) -> None:
        """Read a pick file (``.coords``, ``.txt``, ``.csv`` or another program's format)
        for editing; coordinates are checked against ``shape``, and the tomogram's shape and
        voxel size turn coordinates in Angstrom (RELION 5, copick) back into voxels."""
        picks = read_pick_file(path, shape=self.shape, tomo_name=self.tomo_name,
                               voxel_size=self.voxel_size)
        picks.tomo_name = self.tomo_name or picks.tomo_name
        self.set_picks(picks, path)

    def save(self, path: Optional[PathLike] = None, fmt: Optional[str] = None) -> list[Path]:
        """Write the picks atomically; returns the files written.

        Without ``fmt`` (a plain ``.coords``/``.txt``/``.csv`` table) ``path`` (default: the
        current file) becomes the file being edited, the picks count as saved and the
        autosave file is removed. With ``fmt`` (a format of :mod:`deepetpicker.io.formats`)
        the picks are exported: to ``path`` itself for formats that write one table file
        (RELION, Dynamo), else into ``path``'s folder under that format's file names; the
        edited file and the unsaved state stay as they were.
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise DeepETPickerError("No file to save the picks to; use Save As and choose a "
                                    "file name (.coords, .txt, .csv, .box, .star, ...).")
        if fmt is None and target.suffix.lower() not in PICK_SUFFIXES:
            fmt = save_format_for_suffix(target.suffix)
            if fmt is None:
                suffixes = dict.fromkeys(suffix for _, _, suffix in SAVE_FILTERS)
                raise DeepETPickerError(
                    f"Cannot save picks as {target.name}: unknown suffix {target.suffix!r}. "
                    f"Use {spoken_list(list(suffixes), 'or')}.")
        if fmt is not None and fmt != "coords":
            return export_picks(self.to_picks(), fmt, target.parent, self.shape,
                                chosen=target)
        if target.suffix.lower() not in PICK_SUFFIXES:
            target = target.with_suffix(".coords")
        written = write_picks(target, self.to_picks())
        previous, self.path = self.path, target
        self._unsaved_load = False
        self.undo_stack.setClean()
        self._emit_dirty()
        for old in {previous, target} - {None}:
            remove_autosave(old)
        return [written]

    def write_autosave(self, picks_path: Optional[PathLike] = None) -> Optional[Path]:
        """Write the picks to the autosave file of ``picks_path`` (default: the current
        file) atomically; returns it (None when there is no file to save beside)."""
        picks_path = picks_path if picks_path is not None else self.path
        if picks_path is None:
            return None
        target = autosave_path(picks_path)
        write_picks(target, self.to_picks())
        return target

    # -- edits (undoable) ----------------------------------------------------------------------
    def add(self, cls: int, x: float, y: float, z: float, score: float = 1.0) -> int:
        """Add a pick of class ``cls``; returns its index."""
        if int(cls) < 1:
            raise DeepETPickerError(f"Class {cls} is not allowed; class ids start at 1.")
        xyz = self._clip(np.array([x, y, z], dtype=np.float64))
        row = np.array([int(cls), *xyz, float(score)], dtype=np.float64)
        self.undo_stack.push(_AddPick(self, row))
        return len(self) - 1

    def remove(self, indices: Union[int, Sequence[int]]) -> None:
        """Delete the picks at ``indices``."""
        idx = np.unique(np.atleast_1d(np.asarray(indices, dtype=np.int64)))
        idx = idx[(idx >= 0) & (idx < len(self))]
        if len(idx):
            self.undo_stack.push(_DeletePicks(self, idx))

    def move(self, index: int, x: float, y: float, z: float,
             drag_id: Optional[int] = None) -> None:
        """Move a pick; moves with the same ``drag_id`` undo as one step."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        xyz = self._clip(np.array([x, y, z], dtype=np.float64))
        if np.allclose(xyz, self.rows[index, 1:4]):
            return
        self.undo_stack.push(_MovePick(self, int(index), xyz, drag_id))

    def _clip(self, xyz: np.ndarray) -> np.ndarray:
        if self.shape is None:
            return xyz
        upper = np.array(self.shape[::-1], dtype=np.float64) - 1
        return np.clip(xyz, 0.0, upper)

    # -- primitive changes used by the commands ----------------------------------------------
    def _insert(self, indices: np.ndarray, rows: np.ndarray) -> None:
        # indices are ascending positions in the table after insertion
        result = self.rows
        for i, row in zip(indices, rows):
            result = np.insert(result, int(i), row, axis=0)
        self.rows = result
        self.rows_changed.emit()
        self.changed.emit()

    def _delete(self, indices: np.ndarray) -> None:
        self.rows = np.delete(self.rows, indices, axis=0)
        self.rows_changed.emit()
        self.changed.emit()

    def _set_xyz(self, index: int, xyz: np.ndarray) -> None:
        self.rows[index, 1:4] = xyz
        self.changed.emit()


def remove_autosave(picks_path: PathLike) -> None:
    """Delete the autosave file of ``picks_path`` if there is one."""
    try:
        autosave_path(picks_path).unlink()
    except FileNotFoundError:
        pass
