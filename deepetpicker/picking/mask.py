"""Regions of interest: a mask volume limits where particles are picked.

A mask is a volume of the tomogram's shape (an MRC file or a ``.zarr``), non-zero where picks
are kept; or a folder of masks named like the tomograms (``tomo.mrc`` takes ``tomo_mask.mrc``,
``tomo.mask.mrc``, ``tomo-mask.mrc`` or ``tomo.mrc`` from the folder, or the same names as
``.zarr``).
Prediction skips the tiles that lie entirely outside the mask, so masking off the empty parts
of a tomogram also saves their scan, and drops every pick outside the mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError, listed
from deepetpicker.io.picks import Picks
from deepetpicker.io.tomogram import find_tomograms, load_tomogram
from deepetpicker.io.zarr_tomogram import ChunkCache, Level, is_zarr_path
from deepetpicker.picking.tiling import Tile
from deepetpicker.types import PathLike

#: A volume read lazily: a memory-mapped MRC (numpy) or a Zarr array behind a chunk cache.
VolumeLike = Union[np.ndarray, ChunkCache]


#: Name endings after a tomogram's stem that a mask in a folder of masks may have, in order
#: of preference (the bare stem last, so masks may sit beside their tomograms).
MASK_NAME_ENDINGS = ("_mask", ".mask", "-mask", "")


def mask_paths(mask: PathLike, tomograms: Sequence[Path]) -> dict[Path, Path]:
    """The mask of each tomogram: ``mask`` itself when it is a volume, else the volume in the
    folder ``mask`` named like the tomogram.

    Raises :class:`DeepETPickerError` for a missing mask or folder, and for tomograms without
    a mask in the folder (all named in one message).
    """
    mask = Path(mask)
    if not mask.exists():
        raise DeepETPickerError(f"Mask not found: {mask}. Give a mask volume (MRC or .zarr) or "
                                f"a folder of masks named like the tomograms (--mask).")
    if mask.is_file() or is_zarr_path(mask):
        return {Path(t): mask for t in tomograms}
    by_stem = {p.stem: p for p in find_tomograms(mask)}
    found, missing = {}, []
    for tomo in tomograms:
        tomo = Path(tomo)
        match = next((by_stem[tomo.stem + end] for end in MASK_NAME_ENDINGS
                      if tomo.stem + end in by_stem
                      and by_stem[tomo.stem + end].resolve() != tomo.resolve()), None)
        if match is None:
            missing.append(tomo.name)
        else:
            found[tomo] = match
    if missing:
        raise DeepETPickerError(
            f"The mask folder {mask} has no mask for {listed(missing)}. Name each mask like its "
            f"tomogram (e.g. {Path(missing[0]).stem}.mrc or {Path(missing[0]).stem}_mask.mrc), "
            f"or give one mask file for all tomograms.")
    return found


def load_mask(path: PathLike, shape: Sequence[int], tomogram: PathLike = "",
              level: Level = None) -> VolumeLike:
    """The mask volume at ``path`` (read lazily, like a tomogram), checked to have ``shape``.

    ``level``: the scale level of an OME-Zarr mask (as for the tomogram).
    """
    data = load_tomogram(path, mmap=True, level=level).data
    shape = tuple(int(s) for s in shape)
    if tuple(int(s) for s in data.shape) != shape:
        raise DeepETPickerError(
            f"The mask {path} has shape {tuple(int(s) for s in data.shape)} (z, y, x) but the "
            f"tomogram {tomogram or ''} has shape {shape}. A mask must have the tomogram's "
            f"size; make it at the tomogram's binning (or choose the matching --zarr-level).")
    return data


class TileFilter:
    """``keep_tile`` for :func:`deepetpicker.picking.tiling.scan`: whether a tile's cube of
    edge ``patch`` (its kept region and the context around it) holds any voxel of ``mask``.

    Tiles that see no masked voxel are skipped; those that do run, so the scores just outside
    the mask are the unmasked ones and picks near its edge are placed as without a mask.
    Reads only the tile's region of the mask; counts the tiles it let run and those it
    skipped.
    """

    def __init__(self, mask: VolumeLike, patch: int) -> None:
        self.mask = mask
        self.patch = int(patch)
        self.run = 0
        self.skipped = 0

    def region(self, tile: Tile) -> tuple[slice, ...]:
        """The part of the volume under ``tile``'s cube."""
        return tuple(slice(max(s, 0), min(s + self.patch, n))
                     for s, n in zip(tile.start, self.mask.shape))

    def __call__(self, tile: Tile) -> bool:
        inside = bool(np.any(np.asarray(self.mask[self.region(tile)])))
        if inside:
            self.run += 1
        else:
            self.skipped += 1
        return inside


def picks_in_mask(picks: Picks, mask: VolumeLike) -> Picks:
    """The picks whose voxel (rounded, clipped to the volume) is non-zero in ``mask``."""
    if len(picks) == 0:
        return picks
    shape = np.array(mask.shape)
    zyx = np.clip(np.rint(picks.zyx).astype(np.int64), 0, shape - 1)
    index = (zyx[:, 0], zyx[:, 1], zyx[:, 2])
    values = mask.vindex[index] if hasattr(mask, "vindex") else mask[index]  # Zarr / arrays
    return picks.select(np.asarray(values) != 0)


__all__ = ["MASK_NAME_ENDINGS", "TileFilter", "load_mask", "mask_paths", "picks_in_mask"]
