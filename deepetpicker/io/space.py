"""Disk space: a full disk is said in words, never met halfway through a memory map.

Writing through a memory map to a sparse file dies of SIGBUS when the disk fills (no message,
no clean-up), so large outputs of known size take their space first (:func:`reserve`).
Every other write goes through :func:`deepetpicker.io.atomic.atomic_path`, which turns a full
disk (``ENOSPC``, or ``EDQUOT`` for a full quota) into :func:`disk_full_error` and removes its
temporary file, so the files written before stay complete.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Optional

from deepetpicker.errors import DeepETPickerError

#: The errors of a file system with no room left: the disk, or the user's quota on it.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system (or the quota) has no room left."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def size_text(nbytes: float) -> str:
    """``1.5 GB``, ``640 KB``: a size as people read it (powers of 1000)."""
    value = float(nbytes)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000.0
    return f"{value:.1f} TB"


def free_bytes(folder: Path) -> Optional[int]:
    """The bytes free to this user in ``folder``'s file system, or None when unknown."""
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


def disk_full_error(path: Path, needed: Optional[int] = None) -> DeepETPickerError:
    """The message for a file ``path`` that its disk had no room for: the folder, the space
    needed where known and free, and the fix."""
    folder = Path(path).parent
    free = free_bytes(folder)
    amounts = ""
    if needed is not None:
        amounts = f" It needs {size_text(needed)}"
        amounts += f"; {size_text(free)} are free." if free is not None else "."
    elif free is not None:
        amounts = f" {size_text(free)} are free there."
    return DeepETPickerError(
        f"The disk of {folder} is full: {Path(path).name} could not be written.{amounts} "
        f"Free space there or choose an output folder on another disk, then run the same "
        f"command again; the files written before are complete and were kept.")


def reserve(path: Path, nbytes: int, name: Optional[Path] = None) -> None:
    """Give the file ``path`` its ``nbytes`` on disk now (``posix_fallocate``), so that writing
    it later cannot meet a full disk; raise :func:`disk_full_error` (naming ``name``, the
    file's final name, when given) when there is no room. Where the file system cannot
    allocate ahead, the free space is checked instead."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        try:
            os.posix_fallocate(fd, 0, int(nbytes))
            return
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(name or path, nbytes) from None
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
        except AttributeError:              # no posix_fallocate on this system
            pass
        free = free_bytes(Path(path).parent)
        if free is not None and free < int(nbytes) - os.fstat(fd).st_blocks * 512:
            raise disk_full_error(name or path, nbytes)
    finally:
        os.close(fd)
