"""Tomograms on disk: MRC files (``.mrc``, ``.rec``, ``.map``, ``.st``) read memory-mapped,
and Zarr folders (``.zarr``, OME-Zarr as copick writes them; see
:mod:`deepetpicker.io.zarr_tomogram`) read chunk by chunk.

Arrays are ``(z, y, x)``. Reading is permissive about header quirks written by other
programs; what cannot be a tomogram (not MRC, truncated, 2-D, NaN/Inf) gets an error that
names the file and says what to do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import numpy as np
from numpy.typing import DTypeLike

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path
from deepetpicker.io.dataset import TOMOGRAM_SUFFIXES, ZARR_SUFFIXES
from deepetpicker.io.zarr_tomogram import Level, is_zarr_path, open_zarr_tomogram
from deepetpicker.types import PathLike

if TYPE_CHECKING:
    from mrcfile.mrcmemmap import MrcMemmap



@dataclass
class Tomogram:
    """A tomogram: ``data`` (z, y, x), possibly a read-only memory map or Zarr array (both read
    only what is sliced); voxel size in Angstrom."""

    data: np.ndarray
    voxel_size: Optional[float]
    path: Optional[Path] = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else ""


def _voxel_size(mrc) -> Optional[float]:
    try:
        vs = mrc.voxel_size
        values = [float(vs.x), float(vs.y), float(vs.z)]
    except Exception:  # malformed header fields
        return None
    values = [v for v in values if np.isfinite(v) and v > 0]
    return values[0] if values else None


def load_tomogram(path: PathLike, mmap: bool = True, level: Level = None) -> Tomogram:
    """Open a tomogram as a ``(z, y, x)`` array: an MRC file memory-mapped, a ``.zarr`` folder
    as a Zarr array read chunk by chunk; ``mmap=False`` reads either whole into memory.

    ``level``: the scale level of an OME-Zarr tomogram (index or name, default 0, the full
    resolution; its voxel size is that level's scale). Ignored for MRC files.
    """
    import mrcfile

    path = Path(path)
    if not path.exists():
        raise DeepETPickerError(f"Tomogram file not found: {path}")
    if path.is_dir() and is_zarr_path(path):
        data, voxel = open_zarr_tomogram(path, level)
        if not mmap:
            data = np.asarray(data[...])
        return Tomogram(data=data, voxel_size=voxel, path=path)
    if path.is_dir():
        raise DeepETPickerError(f"{path} is a folder, not a tomogram file")
    size = path.stat().st_size
    if size < _HEADER_BYTES:
        raise DeepETPickerError(
            f"{path} is not an MRC tomogram: it has {size} bytes, fewer than the "
            f"{_HEADER_BYTES}-byte MRC header. Choose the reconstructed tomogram (.mrc/.rec).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mmap:
                mrc = mrcfile.mmap(path, mode="r", permissive=True)
            else:
                mrc = mrcfile.open(path, mode="r", permissive=True)
    except (ValueError, OSError, EOFError) as exc:
        raise DeepETPickerError(_unreadable_message(path, size, str(exc))) from exc
    data = mrc.data
    if data is None:
        mrc.close()
        raise DeepETPickerError(_unreadable_message(path, size, "mrcfile found no data block"))
    expected = _expected_bytes(mrc)
    if expected is not None and size < expected:
        mrc.close()
        raise DeepETPickerError(_truncated_message(path, expected, size))
    if data.ndim != 3 or min(data.shape) < 2:
        shape = data.shape
        mrc.close()
        raise DeepETPickerError(
            f"{path} holds an array of shape {shape}, not a 3-D tomogram. Particle picking "
            f"needs a reconstructed volume (z, y, x), not a single image or a stack header.")
    voxel = _voxel_size(mrc)
    if not mmap:
        data = np.array(data)
        mrc.close()
    return Tomogram(data=data, voxel_size=voxel, path=path)


_HEADER_BYTES = 1024
# Bytes per voxel for the MRC modes mrcfile reads (mode 101 packs two voxels per byte).
_MODE_ITEMSIZE = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2, 101: 0.5}


def _raw_header(path: Path) -> Optional[tuple[int, int, int, int, int]]:
    """``(nx, ny, nz, mode, extended_header_bytes)`` if the first bytes look like an MRC
    header (either byte order), else None."""
    with open(path, "rb") as handle:
        raw = handle.read(_HEADER_BYTES)
    if len(raw) < _HEADER_BYTES:
        return None
    for order in ("<", ">"):
        words = np.frombuffer(raw, dtype=f"{order}i4", count=24)
        nx, ny, nz, mode = (int(v) for v in words[:4])
        dims_ok = all(0 < n < 10_000_000 for n in (nx, ny, nz))
        if dims_ok and mode in _MODE_ITEMSIZE:
            return nx, ny, nz, mode, max(int(words[23]), 0)
    return None


def _unreadable_message(path: Path, size: int, detail: str) -> str:
    header = _raw_header(path)
    if header is None:
        return (f"{path} is not an MRC file: its first {_HEADER_BYTES} bytes are not an MRC "
                f"header ({detail}). Tomograms must be MRC files (.mrc, .rec, .map); convert "
                f"other formats first, e.g. with IMOD or EMAN2.")
    nx, ny, nz, mode, ext = header
    expected = int(_HEADER_BYTES + ext + nx * ny * nz * _MODE_ITEMSIZE[mode])
    if size < expected:
        return _truncated_message(path, expected, size)
    return (f"Cannot read {path} as an MRC tomogram ({detail}). Check that the file is a "
            f"complete MRC/REC file; export it again from your reconstruction program.")


def _truncated_message(path: Path, expected: int, size: int) -> str:
    return (f"{path} is truncated: its header describes {expected} bytes but the file has "
            f"{size}. The copy is incomplete; copy or export it again.")


def _expected_bytes(mrc) -> Optional[int]:
    try:
        h = mrc.header
        nx, ny, nz = int(h.nx), int(h.ny), int(h.nz)
        itemsize = mrc.data.dtype.itemsize
        return 1024 + int(h.next) + nx * ny * nz * itemsize
    except Exception:
        return None


def tomogram_shape(path: PathLike) -> tuple[int, int, int]:
    """Shape ``(z, y, x)`` from the header (opens memory-mapped, reads no voxels)."""
    return load_tomogram(path, mmap=True).shape


def iter_chunks(shape_z: int, chunk: int = 16) -> Iterator[slice]:
    """Slices of ``chunk`` z-planes covering ``range(shape_z)``."""
    for start in range(0, shape_z, chunk):
        yield slice(start, min(start + chunk, shape_z))


def check_finite(tomo: Tomogram, chunk: int = 16) -> None:
    """Raise a clear error if the tomogram holds NaN or Inf (checked in chunks)."""
    data = tomo.data
    if data.dtype.kind not in "fc":
        return
    for sl in iter_chunks(data.shape[0], chunk):
        block = np.asarray(data[sl])
        if not np.isfinite(block).all():
            bad = np.argwhere(~np.isfinite(block))[0]
            z, y, x = int(bad[0] + sl.start), int(bad[1]), int(bad[2])
            raise DeepETPickerError(
                f"{tomo.path} holds NaN or Inf values (first at x={x}, y={y}, z={z}). "
                f"Re-export the tomogram or replace the invalid voxels before picking.")


def write_tomogram(path: PathLike, data: np.ndarray, voxel_size: Optional[float] = None,
                   dtype: DTypeLike = np.float32) -> Path:
    """Write a ``(z, y, x)`` array as MRC (float32 by default), atomically."""
    import mrcfile

    path = Path(path)
    arr = np.asarray(data, dtype=dtype)
    if arr.ndim != 3:
        raise DeepETPickerError(f"Cannot write {path}: expected a 3-D array, got {arr.shape}")
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc, warnings.catch_warnings():
            # header statistics of data holding NaN/Inf; check_finite reports those clearly
            warnings.simplefilter("ignore", RuntimeWarning)
            mrc.set_data(arr)
            if voxel_size:
                mrc.voxel_size = float(voxel_size)
    return path


def create_tomogram(path: PathLike, shape: tuple[int, int, int],
                    voxel_size: Optional[float] = None,
                    dtype: DTypeLike = np.float32,
                    final_name: Optional[Path] = None) -> MrcMemmap:
    """Create an MRC file of ``shape`` and return a writable memory map (caller closes it).

    The file's space is taken on disk first; when there is none, a
    :class:`DeepETPickerError` names ``final_name`` (the name the file will have, default
    ``path``), the space needed and free, and the fix.

    Used by jobs that fill a large output chunk by chunk; write to a temporary path and
    rename it when complete (see :func:`deepetpicker.io.atomic.atomic_path`).
    """
    import mrcfile

    from deepetpicker.io.space import reserve

    mrc = mrcfile.new_mmap(path, shape=tuple(int(s) for s in shape),
                           mrc_mode=_mrc_mode(np.dtype(dtype)), overwrite=True)
    try:
        # the map is a sparse file: take its space now, or a full disk kills the process
        # (SIGBUS) in the middle of filling it
        reserve(Path(path), Path(path).stat().st_size, name=final_name)
    except BaseException:
        mrc.close()
        raise
    if voxel_size:
        mrc.voxel_size = float(voxel_size)
    return mrc


def _mrc_mode(dtype: np.dtype) -> int:
    modes = {np.dtype(np.int8): 0, np.dtype(np.int16): 1, np.dtype(np.float32): 2,
             np.dtype(np.uint16): 6, np.dtype(np.float16): 12, np.dtype(np.uint8): 0}
    if dtype not in modes:
        raise ValueError(f"unsupported MRC dtype {dtype}")
    return modes[dtype]


def is_tomogram_entry(path: Path, suffixes: tuple[str, ...] = TOMOGRAM_SUFFIXES) -> bool:
    """Whether ``path``, an entry of a folder, is a tomogram with one of ``suffixes``: a file,
    or a folder for a Zarr suffix (``NAME.zarr/``). Hidden entries are not."""
    suffix = path.suffix.lower()
    if path.name.startswith(".") or suffix not in suffixes:
        return False
    return path.is_dir() if suffix in ZARR_SUFFIXES else path.is_file()


def find_tomograms(folder: PathLike, suffixes: tuple[str, ...] = TOMOGRAM_SUFFIXES) -> list[Path]:
    """Tomograms in ``folder`` (sorted by name): files, and ``NAME.zarr`` folders; a file path
    or a Zarr tomogram's own folder is returned as itself."""
    folder = Path(folder)
    if folder.is_file() or (folder.is_dir() and is_zarr_path(folder)):
        return [folder]
    if not folder.is_dir():
        raise DeepETPickerError(f"Tomogram folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if is_tomogram_entry(p, suffixes))
