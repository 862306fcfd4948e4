"""Write files under a temporary name and rename them into place.

An interrupted job never leaves a half-written file under the real name: readers see
either the old complete file or the new complete file. A temporary file left by a killed
process is removed by the next command writing there (:func:`remove_stale_parts`). A full
disk is reported as a :class:`~deepetpicker.errors.DeepETPickerError` naming the file and
its folder (see :mod:`deepetpicker.io.space`), with the temporary file removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from deepetpicker.io.space import disk_full_error, is_disk_full
from deepetpicker.types import PathLike


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary file keeps the final suffix, so libraries that look at the extension
    (mrcfile, numpy) behave as for the real name. On error the temporary file is removed; a
    full disk becomes a :func:`~deepetpicker.io.space.disk_full_error` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}",
                               dir=path.parent)
    tmp_path = Path(tmp)
    try:
        # held while the file is written: a temporary file nobody holds was left by a killed
        # process, and remove_stale_parts may take it away
        _lock(fd, blocking=True)
        # mkstemp creates the file readable by its owner only; give the result the
        # permissions any newly created file would get (shared folders stay group-readable)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if is_disk_full(exc):
            raise disk_full_error(path) from exc
        raise
    finally:
        os.close(fd)


#: The name :func:`atomic_path` gives a temporary file: ``.<stem>.<random>.part<suffix>``.
PART_NAME = re.compile(r"^\..*\.[A-Za-z0-9_]{8}\.part(\.[^.]+)?$")


def _lock(fd: int, blocking: bool) -> bool:
    """Take the exclusive lock of the open file ``fd``; False when another process holds it
    (``blocking`` False). Without ``flock`` (not POSIX) every lock is granted."""
    try:
        import fcntl
    except ImportError:                 # pragma: no cover - not a POSIX system
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def remove_stale_parts(folder: PathLike, depth: int = 1) -> list[Path]:
    """Remove the temporary files that writes killed before they finished left in ``folder``
    (and its sub-folders, ``depth`` levels down): files named as :func:`atomic_path` names
    them whose lock no process holds. A write in progress holds its lock and is left alone.
    Returns the files removed."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            if depth > 0:
                removed += remove_stale_parts(entry, depth - 1)
            continue
        if not PART_NAME.match(entry.name) or not entry.is_file():
            continue
        try:
            fd = os.open(entry, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(fd, blocking=False):
                entry.unlink()
                removed.append(entry)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def locked(lock_file: PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created when missing) while the block runs, so
    that processes updating one shared record (read, change, write) take turns. Where the
    system has no ``flock`` the block runs unlocked."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _lock(fd, blocking=True)
        yield
    finally:
        os.close(fd)                    # closing releases the lock
