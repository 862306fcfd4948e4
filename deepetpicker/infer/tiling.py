"""Overlap-tile scan: run a patch network over a volume of any shape.

Cubic tiles of edge ``N`` are placed with stride ``N - 2 * pad`` along each axis, the last one
flush with the end of the axis. Each tile contributes only its central region (``pad`` voxels
trimmed from every face), so every voxel's score comes from exactly one tile, computed with at
least ``pad`` voxels of context on each side; at the volume's borders a tile keeps its outer
margin, since no other tile can cover it. Axes shorter than ``N`` get a single tile centred on
the axis, the missing context filled by mirroring the volume.

Tiles are read one batch at a time, so the volume can be a read-only memory map of a file many
times larger than memory; the output array is allocated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Callable, Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError


def tile_starts(length: int, patch: int, pad: int) -> list[int]:
    """Start indices of the tiles covering an axis of ``length`` voxels.

    Regular steps of ``patch - 2 * pad`` from 0, then one tile flush with the end of the axis.
    An axis shorter than ``patch`` gets one tile starting at ``-((patch - length) // 2)``
    (centred; the part outside the volume is padded when read).
    """
    length, patch, pad = int(length), int(patch), int(pad)
    stride = _stride(patch, pad)
    if length < 1:
        raise DeepETPickerError(f"Cannot scan an axis of length {length}; the volume is empty.")
    if length <= patch:
        return [-((patch - length) // 2)]
    starts = list(range(0, length - patch, stride))
    starts.append(length - patch)
    return starts


def _stride(patch: int, pad: int) -> int:
    if patch < 1:
        raise DeepETPickerError(f"Patch size {patch} is not allowed; use a positive multiple "
                                f"of 8 such as 72.")
    if pad < 0:
        raise DeepETPickerError(f"Pad size {pad} is negative; use 0 or more (12 by default).")
    stride = patch - 2 * pad
    if stride < 1:
        raise DeepETPickerError(
            f"Pad size {pad} is too large for patch size {patch}: the stride patch - 2*pad = "
            f"{stride} leaves no centre region. Use a pad below {(patch + 1) // 2} (6-12 is "
            f"sensible for a patch of 72).")
    return stride


def kept_ranges(length: int, patch: int, pad: int) -> list[tuple[int, int, int]]:
    """Per tile of an axis: ``(start, keep_lo, keep_hi)`` in volume coordinates.

    The half-open ranges ``[keep_lo, keep_hi)`` partition ``[0, length)``; each lies inside
    its tile's centre region (``pad`` from both tile faces) except at the axis ends.
    """
    starts = tile_starts(length, patch, pad)
    ranges = []
    prev_hi = 0
    for i, start in enumerate(starts):
        lo = prev_hi if i else 0
        hi = int(length) if i == len(starts) - 1 else start + patch - pad
        ranges.append((start, lo, hi))
        prev_hi = hi
    return ranges


@dataclass(frozen=True)
class Tile:
    """One tile: its start corner (z, y, x) and the region it keeps (slices in the volume)."""

    start: tuple[int, int, int]
    keep: tuple[slice, slice, slice]


def plan_tiles(shape: Sequence[int], patch: int, pad: int) -> list[Tile]:
    """Every tile of a ``(z, y, x)`` volume in scan order (z slowest), with its kept region."""
    if len(shape) != 3:
        raise DeepETPickerError(f"Expected a 3-D volume (z, y, x), got shape {tuple(shape)}.")
    axes = [kept_ranges(n, patch, pad) for n in shape]
    tiles = []
    for rz, ry, rx in product(*axes):
        tiles.append(Tile(start=(rz[0], ry[0], rx[0]),
                          keep=(slice(rz[1], rz[2]), slice(ry[1], ry[2]), slice(rx[1], rx[2]))))
    return tiles


def read_tile(volume, start: Sequence[int], patch: int, out: Optional[np.ndarray] = None
              ) -> np.ndarray:
    """The ``patch``-cube of ``volume`` at ``start`` as float32; parts outside are mirrored.

    Only the voxels inside the tile are read from ``volume`` (a memory map stays lazy).
    """
    shape = volume.shape
    inner = []
    widths = []
    for s, n in zip(start, shape):
        lo, hi = max(s, 0), min(s + patch, n)
        inner.append(slice(lo, hi))
        widths.append((lo - s, s + patch - hi))
    if out is None:
        out = np.empty((patch,) * 3, dtype=np.float32)
    if any(w != (0, 0) for w in widths):
        block = np.asarray(volume[tuple(inner)], dtype=np.float32)
        out[...] = np.pad(block, widths, mode="reflect" if min(block.shape) > 1 else "edge")
    else:
        out[...] = volume[tuple(inner)]
    return out


PredictFn = Callable[["object"], "object"]


def scan(volume, predict_fn: PredictFn, patch_size: int, pad: int, batch_size: int = 4,
         report: Optional[Callable] = None, num_classes: Optional[int] = None,
         out: Optional[np.ndarray] = None, stage: str = "scan", item: str = "") -> np.ndarray:
    """Score every voxel of ``volume`` (z, y, x) with a patch predictor; returns (K, z, y, x).

    ``predict_fn`` receives a float32 torch tensor ``(B, 1, N, N, N)`` on the CPU and returns
    ``(B, K, N, N, N)`` scores (a torch tensor on any device, or a numpy array). Tiles are fed
    in batches of ``batch_size``; only each tile's kept region is copied into the result, which
    is ``out`` when given (any writable ``(K, z, y, x)`` array, e.g. a memory map) or a new
    float32 array. ``report(stage, done, total, item=item)`` is called after every batch (a
    :class:`deepetpicker.jobs.Reporter` also checks for cancellation there).
    """
    import torch

    if getattr(volume, "ndim", None) != 3:
        raise DeepETPickerError(
            f"Expected a 3-D volume (z, y, x), got shape {getattr(volume, 'shape', None)}.")
    patch_size, pad = int(patch_size), int(pad)
    batch_size = max(1, int(batch_size))
    tiles = plan_tiles(volume.shape, patch_size, pad)
    total = (len(tiles) + batch_size - 1) // batch_size
    buffer = np.empty((batch_size, 1) + (patch_size,) * 3, dtype=np.float32)
    result = out
    if result is None and num_classes is not None:
        result = np.empty((int(num_classes),) + tuple(volume.shape), dtype=np.float32)
    for b in range(total):
        batch = tiles[b * batch_size:(b + 1) * batch_size]
        for i, tile in enumerate(batch):
            read_tile(volume, tile.start, patch_size, out=buffer[i, 0])
        scores = predict_fn(torch.from_numpy(buffer[:len(batch)]))
        expected = (len(batch),) + (patch_size,) * 3
        if scores.ndim != 5 or (scores.shape[0],) + tuple(scores.shape[2:]) != expected:
            raise ValueError(f"predict_fn returned shape {tuple(scores.shape)} for a batch of "
                             f"shape {tuple(buffer[:len(batch)].shape)}; expected "
                             f"({len(batch)}, K, {patch_size}, {patch_size}, {patch_size})")
        if result is None:
            result = np.empty((int(scores.shape[1]),) + tuple(volume.shape), dtype=np.float32)
        if scores.shape[1] != result.shape[0]:
            raise ValueError(f"predict_fn returned {scores.shape[1]} channels, expected "
                             f"{result.shape[0]}")
        for i, tile in enumerate(batch):
            local = tuple(slice(k.start - s, k.stop - s) for k, s in zip(tile.keep, tile.start))
            block = scores[i][(slice(None),) + local]
            if isinstance(block, torch.Tensor):
                block = block.detach().to("cpu", torch.float32).numpy()
            result[(slice(None),) + tile.keep] = block
        if report is not None:
            report(stage, b + 1, total, item=item)
    return result


def count_tiles(shape: Sequence[int], patch: int, pad: int) -> int:
    """How many tiles :func:`scan` runs for a volume of ``shape``."""
    n = 1
    for length in shape:
        n *= len(tile_starts(length, patch, pad))
    return n
