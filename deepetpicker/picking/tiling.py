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
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError

if TYPE_CHECKING:
    import torch


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


def read_tile(volume: np.ndarray, start: Sequence[int], patch: int, out: Optional[np.ndarray] = None
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


def scan(volume: np.ndarray, predict_fn: PredictFn, patch_size: int, pad: int, batch_size: int = 4,
         report: Optional[Callable] = None, num_classes: Optional[int] = None,
         out: Optional[np.ndarray] = None, stage: str = "scan", item: str = "",
         keep_tile: Optional[Callable[[Tile], bool]] = None) -> np.ndarray:
    """Score every voxel of ``volume`` (z, y, x) with a patch predictor; returns (K, z, y, x).

    ``predict_fn`` receives a float32 torch tensor ``(B, 1, N, N, N)`` on the CPU and returns
    ``(B, K, N, N, N)`` scores (a torch tensor on any device, or a numpy array). Tiles are fed
    in batches of ``batch_size``; only each tile's kept region is copied into the result, which
    is ``out`` when given (any writable ``(K, z, y, x)`` array, e.g. a memory map) or a new
    float32 array. ``report(stage, done, total, item=item)`` is called after every batch (a
    :class:`deepetpicker.progress.Reporter` also checks for cancellation there). ``keep_tile``:
    tiles for which it returns False are not run and their kept regions score 0 (e.g. those
    outside a region-of-interest mask, :mod:`deepetpicker.picking.mask`).
    """
    import torch

    if getattr(volume, "ndim", None) != 3:
        raise DeepETPickerError(
            f"Expected a 3-D volume (z, y, x), got shape {getattr(volume, 'shape', None)}.")
    patch_size, pad = int(patch_size), int(pad)
    batch_size = max(1, int(batch_size))
    tiles = plan_tiles(volume.shape, patch_size, pad)
    skipped = []
    if keep_tile is not None:
        run = [bool(keep_tile(t)) for t in tiles]
        skipped = [t for t, r in zip(tiles, run) if not r]
        tiles = [t for t, r in zip(tiles, run) if r]
    total = (len(tiles) + batch_size - 1) // batch_size
    buffer = np.empty((batch_size, 1) + (patch_size,) * 3, dtype=np.float32)
    result = out
    if result is None and num_classes is not None:
        result = np.empty((int(num_classes),) + tuple(volume.shape), dtype=np.float32)
    if skipped and result is None:
        raise ValueError("give num_classes (or out) when keep_tile may skip tiles")
    for tile in skipped:
        result[(slice(None),) + tile.keep] = 0
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


# --------------------------------------------------------------------------------------------
# Test-time augmentation
# --------------------------------------------------------------------------------------------
_AXES = "zyx"


@dataclass(frozen=True)
class TileTransform:
    """A symmetry of a cubic tile: mirror some axes, then turn the XY plane by quarter turns.

    ``flips``: axes mirrored, a string of ``z``, ``y``, ``x``; ``quarter_turns``: 0-3 turns of
    90 degrees from y towards x (``torch.rot90`` over the (y, x) axes). Both keep the z axis,
    along which the missing wedge lies. :meth:`apply` maps a ``(..., z, y, x)`` tensor,
    :meth:`invert` maps it back.
    """

    flips: str = ""
    quarter_turns: int = 0

    @property
    def name(self) -> str:
        """``identity``, ``flip z``, ``flip zyx``, ``rot90``, ``flip x rot270``, ..."""
        parts = []
        if self.flips:
            parts.append(f"flip {self.flips}")
        if self.quarter_turns % 4:
            parts.append(f"rot{90 * (self.quarter_turns % 4)}")
        return " ".join(parts) or "identity"

    def _dims(self, ndim: int) -> list[int]:
        return [ndim - 3 + _AXES.index(a) for a in self.flips]

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch

        if self.flips:
            tensor = torch.flip(tensor, self._dims(tensor.ndim))
        if self.quarter_turns % 4:
            tensor = torch.rot90(tensor, self.quarter_turns % 4, dims=(-2, -1))
        return tensor.contiguous()

    def invert(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch

        if self.quarter_turns % 4:
            tensor = torch.rot90(tensor, -(self.quarter_turns % 4), dims=(-2, -1))
        if self.flips:
            tensor = torch.flip(tensor, self._dims(tensor.ndim))
        return tensor


#: The transform sets of test-time augmentation. ``flips``: every combination of mirroring
#: z, y and x (8), the mirrors training applies, which keep a single-axis missing wedge where
#: it is; ``full``: the 16 maps of the cube onto itself that keep the z axis (mirroring z
#: times the 8 symmetries of the square in XY: quarter turns, with and without mirroring x).
TTA_SETS = {
    "flips": tuple(TileTransform(flips="".join(a for a, on in zip(_AXES, bits) if on))
                   for bits in product((False, True), repeat=3)),
    "full": tuple(TileTransform(flips=fz + fx, quarter_turns=k)
                  for fz in ("", "z") for fx in ("", "x") for k in range(4)),
}
#: The set that ``tta=True`` (``--tta`` without a value) means.
DEFAULT_TTA = "flips"
#: A test-time augmentation choice, as :func:`tta_transforms` reads it.
TTAChoice = Union[None, bool, str, Sequence[TileTransform]]


def tta_transforms(tta: TTAChoice) -> tuple[TileTransform, ...]:
    """The transforms of a test-time augmentation choice: ``False``/``None``/``"off"`` none,
    ``True`` the :data:`DEFAULT_TTA` set, a name of :data:`TTA_SETS`, or a sequence of
    :class:`TileTransform`."""
    if tta is None or tta is False or (isinstance(tta, str) and tta.lower() in ("off", "none",
                                                                               "")):
        return ()
    if tta is True:
        return TTA_SETS[DEFAULT_TTA]
    if isinstance(tta, str):
        key = tta.lower()
        if key not in TTA_SETS:
            raise DeepETPickerError(
                f"Test-time augmentation {tta!r} is not known; use "
                f"{' or '.join(repr(k) for k in TTA_SETS)} ({len(TTA_SETS['flips'])} and "
                f"{len(TTA_SETS['full'])} transforms), True for {DEFAULT_TTA!r}, or False.")
        return TTA_SETS[key]
    transforms = tuple(tta)
    if not all(isinstance(t, TileTransform) for t in transforms):
        raise DeepETPickerError(
            f"Test-time augmentation {tta!r}: give True, False, a set name "
            f"({', '.join(TTA_SETS)}) or a list of TileTransform.")
    return transforms


def with_tta(predict_fn: PredictFn, transforms: Sequence[TileTransform],
             check: Optional[Callable[[], None]] = None) -> PredictFn:
    """A predictor averaging ``predict_fn`` over ``transforms`` of each tile batch.

    Each transform maps the ``(B, 1, N, N, N)`` batch, ``predict_fn`` scores it and the
    inverse transform maps the scores back; the result is their mean, so the scan's memory is
    one extra score batch and its time one pass per transform. No transforms: ``predict_fn``
    itself. ``check`` is called between passes (e.g. to stop on a cancel request).
    """
    import torch

    transforms = tuple(transforms)
    if not transforms:
        return predict_fn

    def averaged(batch):
        if any(t.quarter_turns % 2 for t in transforms) and batch.shape[-1] != batch.shape[-2]:
            raise ValueError(f"Quarter turns in XY need square tiles, got {tuple(batch.shape)}")
        total = None
        for i, transform in enumerate(transforms):
            if i and check is not None:
                check()
            scores = predict_fn(transform.apply(batch))
            if isinstance(scores, np.ndarray):
                scores = torch.from_numpy(np.ascontiguousarray(scores))
            scores = transform.invert(scores).to(torch.float32)
            if total is None:
                total = scores.clone()     # never add into a tensor the predictor owns
            else:
                total += scores
        return total.div_(len(transforms))

    return averaged
