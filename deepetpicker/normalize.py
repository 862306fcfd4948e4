"""Per-tomogram intensity normalisation, streamed over z-slabs.

Two types, named as in the original program's configs:

- ``"standardization"`` (default): z-score ``(x - mean) / std``;
- ``"normalization"``: min-max ``(x - min) / (max - min)``, giving ``[0, 1]``.

Statistics are accumulated slab by slab in float64 (per-slab mean and sum of squared
deviations, merged with Chan's formula, which stays accurate when the mean is far from 0),
and the output is written slab by slab into a memory-mapped MRC under a temporary name that
is renamed when complete. Memory use is a few slabs, whatever the size of the tomogram.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

from deepetpicker.config import NORM_TYPES
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path
from deepetpicker.io.tomogram import Tomogram, create_tomogram, iter_chunks, load_tomogram
from deepetpicker.types import PathLike

Report = Callable[..., Any]

# Voxels per slab when no chunk size is given (about 64 MB as float64).
_SLAB_VOXELS = 8 * 1024 * 1024


class VolumeStats(NamedTuple):
    """Intensity statistics of a volume (population std)."""

    mean: float
    std: float
    min: float
    max: float


def canonical_norm_type(norm_type: str) -> str:
    """``"standardization"`` or ``"normalization"`` for a name or alias (z-score, min-max)."""
    key = str(norm_type).strip().lower()
    for canon, aliases in NORM_TYPES.items():
        if key == canon or key in aliases:
            return canon
    raise DeepETPickerError(
        f"norm_type {norm_type!r} is unknown. Use 'standardization' (z-score, the default) "
        f"or 'normalization' (min-max to [0, 1]).")


def default_chunk(shape: Sequence[int]) -> int:
    """Number of z-slices per slab for a volume of ``shape`` (z, y, x)."""
    plane = max(1, int(shape[1]) * int(shape[2]))
    return max(1, min(int(shape[0]), _SLAB_VOXELS // plane))


def _where(name: str) -> str:
    return str(name) if name else "The tomogram"


def _item(name: str) -> str:
    """The progress item for a file name: its stem, as the jobs name tomograms."""
    return Path(name).stem if name else ""


def chunked_stats(data: np.ndarray, chunk: Optional[int] = None,
                  report: Optional[Report] = None, name: str = "") -> VolumeStats:
    """Mean, std, min and max of a ``(z, y, x)`` array, read ``chunk`` z-slices at a time.

    ``data`` may be a memory map; it is never copied whole. Raises
    :class:`DeepETPickerError` naming ``name`` (the file) on NaN or Inf voxels or an empty
    array. ``report("statistics", done, total, item=<stem of name>)`` is called after each
    slab (a job's :class:`~deepetpicker.progress.Reporter` also checks for cancellation there).
    """
    if data.ndim != 3:
        raise ValueError(f"expected a (z, y, x) array, got shape {data.shape}")
    if data.size == 0:
        raise DeepETPickerError(f"{_where(name)} is empty (shape {data.shape}).")
    chunk = chunk or default_chunk(data.shape)
    slabs = list(iter_chunks(data.shape[0], chunk))
    count = 0
    mean = 0.0
    m2 = 0.0
    vmin, vmax = np.inf, -np.inf
    for k, sl in enumerate(slabs):
        block = np.asarray(data[sl], dtype=np.float64)
        if not np.isfinite(block).all():
            z, y, x = (int(v) for v in np.argwhere(~np.isfinite(block))[0])
            raise DeepETPickerError(
                f"{_where(name)} holds NaN or Inf values (first at x={x}, y={y}, "
                f"z={z + sl.start}). Re-export the tomogram or replace the invalid voxels.")
        n_b = block.size
        mean_b = float(block.mean())
        m2_b = float(np.square(block - mean_b).sum())
        delta = mean_b - mean
        total = count + n_b
        mean += delta * n_b / total
        m2 += m2_b + delta * delta * count * n_b / total
        count = total
        vmin = min(vmin, float(block.min()))
        vmax = max(vmax, float(block.max()))
        if report is not None:
            report("statistics", k + 1, len(slabs), item=_item(name))
    return VolumeStats(mean=mean, std=float(np.sqrt(m2 / count)), min=vmin, max=vmax)


def normalization_scale(stats: VolumeStats, norm_type: str,
                        name: str = "") -> tuple[float, float]:
    """``(offset, scale)`` such that the normalised volume is ``(x - offset) / scale``.

    Raises :class:`DeepETPickerError` naming ``name`` when the volume is constant.
    """
    kind = canonical_norm_type(norm_type)
    spread = stats.std if kind == "standardization" else stats.max - stats.min
    if not spread > 0 or not np.isfinite(spread):
        raise DeepETPickerError(
            f"{_where(name)} is constant (every voxel is {stats.min:g}), so it cannot be "
            f"normalised. Check that this is the reconstructed tomogram and not an empty or "
            f"blank file.")
    offset = stats.mean if kind == "standardization" else stats.min
    return offset, spread


def apply_normalization(block: np.ndarray, stats: VolumeStats,
                        norm_type: str = "standardization") -> np.ndarray:
    """Normalise ``block`` (any part of a volume) with the whole volume's ``stats``; float32."""
    offset, spread = normalization_scale(stats, norm_type)
    out = np.asarray(block, dtype=np.float64) - offset
    out /= spread
    return out.astype(np.float32)


def normalize_to_file(src: Union[Tomogram, PathLike], dst_path: PathLike,
                      norm_type: str = "standardization", chunk: Optional[int] = None,
                      report: Optional[Report] = None,
                      stats: Optional[VolumeStats] = None) -> VolumeStats:
    """Write the normalised ``src`` tomogram to ``dst_path`` (float32 MRC), slab by slab.

    ``src`` is a :class:`Tomogram` or a path (opened memory-mapped). ``stats`` may be given
    when already known (from :func:`chunked_stats`); otherwise a first pass computes them.
    ``report(stage, done, total, item=...)`` is called after every slab with stages
    ``"statistics"`` and ``"normalise"``; when it raises (a cancelled job), the temporary
    file is removed and ``dst_path`` is left as it was. Returns the input's statistics.
    """
    tomo = src if isinstance(src, Tomogram) else load_tomogram(src, mmap=True)
    name = str(tomo.path) if tomo.path is not None else ""
    data = tomo.data
    chunk = chunk or default_chunk(data.shape)
    if stats is None:
        stats = chunked_stats(data, chunk, report, name)
    offset, spread = normalization_scale(stats, norm_type, name)
    slabs = list(iter_chunks(data.shape[0], chunk))
    with atomic_path(dst_path) as tmp:
        mrc = create_tomogram(tmp, data.shape, tomo.voxel_size, np.float32,
                              final_name=Path(dst_path))
        try:
            for k, sl in enumerate(slabs):
                block = np.asarray(data[sl], dtype=np.float64)
                block -= offset
                block /= spread
                mrc.data[sl] = block
                if report is not None:
                    report("normalise", k + 1, len(slabs), item=_item(name))
            header = mrc.header
            header.dmin = (stats.min - offset) / spread
            header.dmax = (stats.max - offset) / spread
            header.dmean = (stats.mean - offset) / spread
            header.rms = stats.std / spread
            mrc.flush()
        finally:
            mrc.close()
    return stats


__all__ = ["VolumeStats", "canonical_norm_type", "chunked_stats",
           "apply_normalization", "normalization_scale", "normalize_to_file", "default_chunk"]
