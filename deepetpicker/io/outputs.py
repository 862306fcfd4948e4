"""Where a command writes: checked before any work, and never over a user's own file.

Every command that writes files opens an :class:`OutputGuard` on its output folder first. The
guard checks that the folder is a folder and that files can be created in it (a probe file is
made and removed), and then, for the list of files the command is going to write, that none
of them is

- an input of the same run (never replaced, even with ``overwrite``);
- a file DeepETPicker did not write: a user's hand-made picks, a config, anything else
  (never replaced, even with ``overwrite``);
- a file an earlier DeepETPicker run wrote (replaced only with ``overwrite``).

A file counts as written by DeepETPicker when the folder's manifest
(:data:`MANIFEST_NAME`, a small JSON file) lists it with its present size and modification
time: :meth:`OutputGuard.record` adds each file right after it is written. A file edited
since (say, picks corrected by hand and saved under the same name) no longer matches and is
the user's again. Prediction files written before manifests existed are recognised by their
``.coords.json`` sidecar. Several processes writing into one folder (two commands, the GUI
and a script) update the manifest in turn, under a lock file (:data:`MANIFEST_LOCK`), each
adding its files to what the others recorded.

All problems are reported in one :class:`~deepetpicker.errors.DeepETPickerError` that names
the files and the choices, before the command has done any work.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional

from deepetpicker.errors import DeepETPickerError, listed
from deepetpicker.io.atomic import locked, remove_stale_parts, write_text_atomic
from deepetpicker.types import PathLike

MANIFEST_NAME = ".deepetpicker-outputs.json"
#: The lock that processes writing into one folder take in turn to update its manifest.
MANIFEST_LOCK = ".deepetpicker-outputs.lock"
# Files listed by name in an error; more are counted.
_LISTED = 5


def check_output_folder(folder: PathLike, what: str = "output folder",
                        option: str = "--out") -> Path:
    """Make sure ``folder`` is (or can become) a folder this process can write in.

    Writes and removes a probe file in it or, when it does not exist yet, in its nearest
    existing parent (nothing is created). Raises a :class:`DeepETPickerError` naming the
    folder, what is wrong and the fix.
    """
    path = Path(folder).expanduser()
    fix = f"Choose another {what} ({option}) or change its permissions."
    if path.exists() and not path.is_dir():
        raise DeepETPickerError(f"The {what} {path} is a file, not a folder. Choose a folder "
                                f"for the outputs ({option}).")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DeepETPickerError(f"The {what} {path} cannot be made: {ancestor} is a file, not "
                                f"a folder. Choose a folder for the outputs ({option}).")
    try:
        fd, probe = tempfile.mkstemp(prefix=".deepetpicker-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DeepETPickerError(f"Cannot write in the {what} {path}: {reason} ({ancestor}). "
                                f"{fix}") from None
    return path


def file_stamp(path: PathLike) -> list:
    """``[absolute path, size, modification time]`` of a file (None for a missing one): what
    tells that an input is the same file as in an earlier run. For a folder (a ``.zarr``
    tomogram) the size and time are the total size and the newest time of everything in it."""
    path = Path(path)
    try:
        stat = path.stat()
        if path.is_dir():
            return [str(path.resolve()), *_tree_stamp(path)]
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [str(path), None, None]


def _tree_stamp(folder: Path) -> tuple[int, int]:
    """Total size and newest modification time of ``folder`` and everything under it."""
    size, newest = 0, folder.stat().st_mtime_ns
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            newest = max(newest, os.stat(os.path.join(root, name)).st_mtime_ns)
        for name in files:
            stat = os.stat(os.path.join(root, name))
            newest = max(newest, stat.st_mtime_ns)
            size += stat.st_size
    return size, newest


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


class OutputGuard:
    """The outputs of one command run in one folder (see the module docstring).

    ``inputs``: files this run reads (never replaced). ``overwrite``: replace files that an
    earlier DeepETPicker run wrote. ``option``: how the user names the folder (for messages).
    """

    def __init__(self, folder: PathLike, *, overwrite: bool = False,
                 inputs: Iterable[PathLike] = (), what: str = "output folder",
                 option: str = "--out") -> None:
        self.folder = check_output_folder(folder, what, option)
        self.overwrite = bool(overwrite)
        self.inputs = [Path(p) for p in inputs]
        self.option = option
        self.claimed: set[Path] = set()
        self.manifest_path = self.folder / MANIFEST_NAME
        self._entries = self._read_manifest()
        #: temporary files of killed writes, removed (this folder and one level below)
        self.stale_removed = remove_stale_parts(self.folder)

    # -- the manifest ------------------------------------------------------------------------
    def _read_manifest(self) -> dict:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        files = data.get("files") if isinstance(data, dict) else None
        return dict(files) if isinstance(files, dict) else {}

    def _key(self, path: Path) -> str:
        try:
            return Path(os.path.abspath(path)).relative_to(
                os.path.abspath(self.folder)).as_posix()
        except ValueError:
            return Path(os.path.abspath(path)).as_posix()

    def written_by_us(self, path: PathLike, tag: Optional[str] = None) -> bool:
        """Whether ``path`` is, unchanged, a file a DeepETPicker run wrote (and, with ``tag``,
        one that it recorded with that tag)."""
        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            return False
        entry = self._entries.get(self._key(path))
        if isinstance(entry, dict):
            return (entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns
                    and (tag is None or entry.get("tag") == tag))
        if tag is not None:
            return False
        # predictions written before manifests: a .coords and the sidecar that names it
        from deepetpicker.io.picks import SIDECAR_SUFFIX, read_sidecar

        if path.name.endswith(".coords" + SIDECAR_SUFFIX):
            picks_path = path.with_name(path.name[:-len(SIDECAR_SUFFIX)])
        elif path.suffix == ".coords":
            picks_path = path
        else:
            return False
        record = read_sidecar(picks_path)
        return record is not None and record.get("picks") == picks_path.name

    def listed(self, path: PathLike) -> bool:
        """Whether the manifest lists ``path`` as written by a DeepETPicker run, whatever has
        happened to the file since (see :meth:`written_by_us` for "and unchanged")."""
        return self._key(Path(path)) in self._entries

    def allow(self, paths: Iterable[PathLike]) -> None:
        """Let this run replace ``paths`` whoever wrote them: files the user has agreed to
        replace (say, in a save dialog that asked). Inputs stay protected (:meth:`check`)."""
        self.claimed.update(Path(os.path.abspath(p)) for p in paths)

    def record(self, paths: Iterable[PathLike], tag: Optional[str] = None) -> None:
        """Note ``paths`` (just written by this run) as DeepETPicker's in the manifest;
        ``tag`` says what made them (see :meth:`check`)."""
        new = {}
        for path in paths:
            path = Path(path)
            try:
                stat = path.stat()
            except OSError:
                continue
            new[self._key(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                    "tag": tag}
            self.claimed.add(Path(os.path.abspath(path)))
        if not new:
            return
        # another process may have recorded its files since this one read the manifest:
        # read it again under the folder's lock and add to what is there
        with locked(self.folder / MANIFEST_LOCK):
            self._entries = {**self._read_manifest(), **new}
            text = json.dumps({"files": self._entries}, indent=1, sort_keys=True) + "\n"
            write_text_atomic(self.manifest_path, text)

    # -- checks ------------------------------------------------------------------------------
    def check(self, paths: Iterable[PathLike], tag: Optional[str] = None) -> list[Path]:
        """Refuse, before any work, when one of ``paths`` may not be written.

        Relative paths are taken inside the folder. A file an earlier run recorded with the
        same ``tag`` (the same inputs and settings, so the same content) may be written again
        without ``overwrite``, and so may a file given to :meth:`allow`. Returns the absolute
        paths, now claimed by this run (claiming a path twice is fine).
        """
        inputs, theirs, ours, planned = [], [], [], []
        for path in paths:
            path = Path(path)
            path = Path(os.path.abspath(path if path.is_absolute() else self.folder / path))
            planned.append(path)
            if any(_same_file(path, p) for p in self.inputs):
                inputs.append(path)
            elif path in self.claimed or not (path.exists() or path.is_symlink()):
                continue
            elif path.is_dir():
                theirs.append(path)
            elif self.written_by_us(path):
                if not self.overwrite and not (tag is not None
                                               and self.written_by_us(path, tag)):
                    ours.append(path)
            else:
                theirs.append(path)
        problems = []
        if inputs:
            problems.append(f"{_listed(inputs)} "
                            f"{'is an input' if len(inputs) == 1 else 'are inputs'} of this "
                            f"run and would be replaced; an input is never replaced. Choose "
                            f"another {self.option}.")
        if theirs:
            one = len(theirs) == 1
            problems.append(f"{_listed(theirs)} {'was' if one else 'were'} not written by "
                            f"DeepETPicker (your own file{'' if one else 's'}?) and would be "
                            f"replaced; such files are never replaced. Choose another "
                            f"{self.option}, or move {'it' if one else 'them'} away.")
        if ours:
            problems.append(f"{_listed(ours)} {'holds' if len(ours) == 1 else 'hold'} the "
                            f"outputs of an earlier DeepETPicker run. Choose another "
                            f"{self.option}, or add --overwrite to replace "
                            f"{'it' if len(ours) == 1 else 'them'}.")
        if problems:
            raise DeepETPickerError(f"Nothing was written in {self.folder}: "
                                    + " ".join(problems))
        self.claimed.update(planned)
        return planned

    def files_written_by(self, write: Callable[[Path], object]) -> list[Path]:
        """The files (relative to the folder) that ``write(folder)`` creates: it is run once in
        an empty scratch folder, e.g. a format writer given stand-in picks."""
        scratch = Path(tempfile.mkdtemp(prefix=".deepetpicker-plan-"))
        try:
            write(scratch)
            return sorted(p.relative_to(scratch) for p in scratch.rglob("*") if p.is_file())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def stale_note(removed: list[Path]) -> str:
    """The log line for the temporary files of killed writes that a command removed."""
    return (f"removed {len(removed)} unfinished file(s) that an interrupted run left: "
            f"{_listed(removed)}")


def _listed(paths: list[Path]) -> str:
    return listed(paths, _LISTED)
