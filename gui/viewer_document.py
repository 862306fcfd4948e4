"""What the Particle Visualization tab edits, without any widget: the open tomogram, its
picks (a :class:`~gui.picks_model.PicksModel`), the pick file, the unsaved state, the
autosave file and the recovery of one left behind.

Unsaved picks are never lost: ``autosave_delay_ms`` after every edit the picks are written
(atomically) to a hidden autosave file beside the pick file (``.<name>.autosave.coords``, see
:func:`~gui.picks_model.autosave_path`; beside ``<tomogram>.coords`` for picks never saved).
The file goes away when the picks are saved or the user discards them; one found when a
tomogram or a pick file is opened is a :class:`Recovery` to offer (:meth:`ViewerDocument.
recovery`), and :meth:`ViewerDocument.last_session` names the tomogram a crashed session left
one behind for.

The view (:class:`gui.tabs.viewer_tab.ViewerTab`) asks the questions and shows the errors:
every method here that can fail on the user's files raises
:class:`~deepetpicker.errors.DeepETPickerError` with the message to show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from PyQt5.QtCore import QObject, QSettings, QTimer, pyqtSignal

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks, read_picks
from deepetpicker.io.tomogram import Tomogram, load_tomogram
from deepetpicker.progress import counted
from deepetpicker.types import PathLike
from gui.picks_model import PicksModel, autosave_path, remove_autosave

if TYPE_CHECKING:
    from deepetpicker.io.copick_project import ProjectRun

log = logging.getLogger("deepetpicker.gui")



@dataclass(frozen=True)
class Recovery:
    """Unsaved picks found in the autosave file of ``picks_path``."""

    picks_path: Path
    autosave: Path
    picks: Picks
    #: when the autosave was written (seconds since the epoch)
    written_at: float


class ViewerDocument(QObject):
    """The tomogram shown in the viewer and the picks being edited on it."""

    #: the title (what is open, whether it is saved) may have changed
    title_changed = pyqtSignal()
    #: a line for the status bar
    status_message = pyqtSignal(str)

    def __init__(self, settings: Optional[QSettings] = None,
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.tomogram: Optional[Tomogram] = None
        #: the copick run the open tomogram belongs to (None for a tomogram file)
        self.copick_run: Optional["ProjectRun"] = None
        self.picks = PicksModel(self)
        self.autosave_delay_ms = 1000
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self.picks.changed.connect(self._on_picks_changed)
        # an edit changes the table before the undo stack counts it, so the first edit after
        # a save is only dirty once the stack has moved
        self.picks.undo_stack.indexChanged.connect(self.schedule_autosave)
        self.picks.dirty_changed.connect(lambda _dirty: self.title_changed.emit())

    # -- state -------------------------------------------------------------------------------
    @property
    def unsaved(self) -> bool:
        """True when a tomogram is open and its picks have changes not saved to a file."""
        return self.tomogram is not None and self.picks.dirty

    @property
    def default_picks_path(self) -> Optional[Path]:
        """``<tomogram folder>/<stem>.coords``: where new picks of this tomogram are saved."""
        if self.tomogram is None or self.tomogram.path is None:
            return None
        return self.tomogram.path.with_suffix(".coords")

    @property
    def picks_target(self) -> Optional[Path]:
        """The pick file being edited, else :attr:`default_picks_path`; the autosave file
        lies beside it."""
        return self.picks.path if self.picks.path is not None else self.default_picks_path

    def title(self) -> str:
        """``tomo.mrc - picks.coords *``: what is open, with ``*`` for unsaved picks."""
        if self.tomogram is None:
            return ""
        if self.picks.path is not None:
            picks = self.picks.path.name
        elif self.copick_run is not None and len(self.picks):
            picks = "copick picks"
        else:
            picks = "new picks"
        name = self.tomogram.path.name
        if self.copick_run is not None:
            name = f"{self.copick_run.name}/{name}"
        return f"{name} - {picks}{' *' if self.picks.dirty else ''}"

    # -- opening -----------------------------------------------------------------------------
    def open_tomogram(self, path: PathLike) -> Tomogram:
        """Open a tomogram (memory-mapped) with an empty table of picks. The caller asks
        about unsaved picks first; on an error nothing changes."""
        tomo = load_tomogram(path, mmap=True)
        self._autosave_timer.stop()
        self.tomogram = tomo
        self.copick_run = None
        self.picks.clear(tomo.name, tomo.shape, tomo.voxel_size)
        self._remember("tomogram", str(tomo.path))
        self._remember("picks", "")
        nz, ny, nx = tomo.shape
        self.status_message.emit(f"Opened {tomo.path.name} ({nx} x {ny} x {nz})")
        self.title_changed.emit()
        return tomo

    def open_copick_run(self, config: PathLike, run: str, tomo_type: str,
                        voxel_spacing: float, user_id: Optional[str] = None,
                        session_id: Optional[str] = None,
                        object_names: Optional[Sequence[str]] = None) -> "ProjectRun":
        """Open the ``tomo_type`` tomogram at ``voxel_spacing`` of ``run`` in the copick
        project ``config`` (its ``.zarr`` folder, read in place) with the run's picks of
        ``object_names`` (default every particle) by ``user_id`` / ``session_id`` (default
        any) for editing: class id = the object's label, positions in voxels.

        The picks are not written back into the project: they have no file until saved (Save
        As), like new picks. The caller asks about unsaved picks first; on an error nothing
        changes.
        """
        from deepetpicker.io.copick_project import open_run

        found = open_run(config, run, tomo_type, voxel_spacing, user_id, session_id,
                         object_names)
        self.open_tomogram(found.tomogram)
        self.copick_run = found
        picks = found.picks
        picks.tomo_name = self.picks.tomo_name
        self.picks.set_picks(picks)
        who = " ".join(f"{k} {v}" for k, v in (("user", user_id), ("session", session_id)) if v)
        self.status_message.emit(f"Opened run {found.name} of {Path(config).name} with "
                                 f"{counted(len(picks), 'pick')}{' of ' + who if who else ''}")
        self.title_changed.emit()
        return found

    def load_picks(self, path: PathLike) -> None:
        """Edit the picks of a file (ours or another program's) on the open tomogram; on an
        error the picks shown stay as they were."""
        if self.tomogram is None:
            raise DeepETPickerError("Open the tomogram the picks belong to first (Open "
                                    "tomogram...).")
        self.picks.load(path)
        self._remember("picks", str(path))
        self.status_message.emit(f"Loaded {counted(len(self.picks), 'pick')} from "
                                 f"{Path(path).name}")
        self.title_changed.emit()

    def load_mask(self, kind: str, path: PathLike) -> np.ndarray:
        """A weak-label (``kind`` "labels") or occupancy volume made from the open tomogram,
        or a region of interest (``kind`` "mask": the volume prediction's ``mask`` reads,
        MRC or ``.zarr``, non-zero inside), read lazily; it must have the tomogram's shape."""
        if self.tomogram is None:
            raise DeepETPickerError(f"Open the tomogram first, then its {kind}.")
        if kind == "mask":
            from deepetpicker.picking.mask import load_mask

            return load_mask(path, self.tomogram.shape, self.tomogram.path)
        mask = load_tomogram(path, mmap=True)
        if mask.shape != self.tomogram.shape:
            raise DeepETPickerError(
                f"{path} has shape {mask.shape} (z, y, x) but the tomogram "
                f"{self.tomogram.path.name} has {self.tomogram.shape}. Choose the {kind} "
                f"file made from this tomogram (same name under the dataset's "
                f"{'label' if kind == 'labels' else 'data_ocp'} folder).")
        return mask.data

    # -- saving ------------------------------------------------------------------------------
    @property
    def needs_file_name(self) -> bool:
        """True when Save has no file to write to (new picks): ask for one (Save As)."""
        return self.picks.path is None

    def save(self, path: Optional[PathLike] = None, fmt: Optional[str] = None) -> list[Path]:
        """Write the picks; returns the files written.

        Without ``path`` to the file being edited. A plain table (``.coords``, ``.txt``,
        ``.csv``) becomes the file being edited and the picks count as saved: their
        autosave files go. With ``fmt`` (a format of :mod:`deepetpicker.io.formats`) or
        another program's suffix the picks are exported; the file being edited, the unsaved
        state and the autosave stay as they were.
        """
        if self.tomogram is None:
            raise DeepETPickerError("Open a tomogram and pick particles before saving.")
        target = Path(path) if path is not None else self.picks.path
        try:
            written = self.picks.save(target, fmt=fmt)
        except OSError as exc:
            raise DeepETPickerError(f"Writing {target} failed: {exc.strerror or exc}. Choose "
                                    f"another folder with Save As.") from exc
        if not self.picks.dirty:  # saved, not only exported
            self._autosave_timer.stop()
            if self.picks.path is not None:
                # picks never saved before were autosaved beside the default file
                remove_autosave(self.default_picks_path)
                self._remember("picks", str(self.picks.path))
        names = ", ".join(p.name for p in written)
        self.status_message.emit(f"Saved {counted(len(self.picks), 'pick')} to {names}")
        self.title_changed.emit()
        return written

    def discard(self) -> None:
        """Drop the unsaved changes' autosave (the user chose to discard them)."""
        self._autosave_timer.stop()
        target = self.picks_target
        if target is not None:
            remove_autosave(target)

    # -- autosave and recovery ---------------------------------------------------------------
    def schedule_autosave(self, *_args) -> None:
        """Autosave ``autosave_delay_ms`` from now, when there is something unsaved."""
        if self.picks.dirty:
            self._autosave_timer.start(self.autosave_delay_ms)

    def _on_picks_changed(self) -> None:
        self.schedule_autosave()
        self.title_changed.emit()

    def autosave_now(self) -> Optional[Path]:
        """Write the unsaved picks to the autosave file (atomically); returns it, or None
        when there is nothing to save or writing failed (reported as a status message)."""
        target = self.picks_target
        if target is None or not self.picks.dirty:
            return None
        auto = autosave_path(target)
        try:
            self.picks.write_autosave(target)
        except (OSError, DeepETPickerError) as exc:
            self.status_message.emit(f"Autosave to {auto} failed: {exc}")
            log.warning("autosave to %s failed: %s", auto, exc)
            return None
        return auto

    def recovery(self, picks_path: Optional[PathLike]) -> Optional[Recovery]:
        """The unsaved picks autosaved for ``picks_path``, if there are any (an unreadable
        autosave file is reported and ignored)."""
        if picks_path is None:
            return None
        picks_path = Path(picks_path)
        auto = autosave_path(picks_path)
        if not auto.is_file():
            return None
        shape = self.tomogram.shape if self.tomogram is not None else None
        try:
            picks = read_picks(auto, shape=shape)
        except DeepETPickerError as exc:
            self.status_message.emit(f"Ignoring an unreadable autosave file: {exc}")
            return None
        return Recovery(picks_path, auto, picks, auto.stat().st_mtime)

    def restore(self, recovery: Recovery) -> None:
        """Edit the recovered picks; they count as unsaved until saved."""
        picks = recovery.picks
        picks.tomo_name = self.picks.tomo_name
        path = recovery.picks_path if recovery.picks_path.is_file() else None
        self.picks.set_picks(picks, path, dirty=True)
        self.status_message.emit(f"Restored {counted(len(picks), 'unsaved pick')}; save them "
                                 f"to keep them")
        self.title_changed.emit()

    def drop_recovery(self, recovery: Recovery) -> None:
        """Delete a recovery's autosave file (the user did not want it back)."""
        remove_autosave(recovery.picks_path)

    # -- the last session --------------------------------------------------------------------
    def _remember(self, key: str, value: str) -> None:
        if self.settings is not None:
            self.settings.setValue(f"viewer/{key}", value)

    def last_session(self) -> Optional[tuple[Path, Optional[Path]]]:
        """``(tomogram, pick file or None)`` of the last session when it left unsaved picks
        behind in an autosave file; None otherwise."""
        if self.settings is None:
            return None
        tomo = self.settings.value("viewer/tomogram", "", type=str)
        picks = self.settings.value("viewer/picks", "", type=str)
        if not tomo or not Path(tomo).exists():     # a file, or a .zarr folder
            return None
        target = Path(picks) if picks else Path(tomo).with_suffix(".coords")
        if not autosave_path(target).is_file():
            return None
        return Path(tomo), (Path(picks) if picks and Path(picks).is_file() else None)
