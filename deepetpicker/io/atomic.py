"""Write files under a temporary name and rename them into place.

An interrupted job never leaves a half-written file under the real name: readers see
either the old complete file or the new complete file. A full disk is reported as a
:class:`~deepetpicker.errors.DeepETPickerError` naming the file and its folder (see
:mod:`deepetpicker.io.space`), with the temporary file removed.
"""

from __future__ import annotations

import contextlib
import os
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
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file readable by its owner only; give the result the permissions
    # any newly created file would get (shared data folders stay readable by the group).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if is_disk_full(exc):
            raise disk_full_error(path) from exc
        raise


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def locked(lock_file: PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created when missing) while the block runs, so
    that processes updating one shared record (read, change, write) take turns. Where the
    system has no ``flock`` the block runs unlocked."""
    try:
        import fcntl
    except ImportError:                 # pragma: no cover - not a POSIX system
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                    # closing releases the lock
