"""Shapes, voxel sizes and pixel sizes per tomogram, and the checks that they are known."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.formats.names import ClassIds, TomoNames, split_object_stem
from deepetpicker.io.picks import Picks

Shape = tuple[int, int, int]
ShapeSpec = Union[None, Sequence[int], Sequence[Sequence[int]], Mapping[str, Sequence[int]]]
VoxelSpec = Union[None, float, Mapping[str, float]]

TS_PIXEL = "rlnTomoTiltSeriesPixelSize"  # what RELION 4 and 5 put in the optics table
# A pixel-size ratio within this relative distance of a whole number is that binning.
BINNING_TOLERANCE = 1e-3


@dataclass
class Geometry:
    """Where shapes and voxel sizes come from: one value for all tomograms, a list in table
    order, or a mapping from tomogram name; plus the RELION options and the tomograms given
    (name -> path, for messages)."""

    shapes: ShapeSpec = None
    voxel_size: VoxelSpec = None
    binning: Optional[float] = None
    ts_pixel: Optional[float] = None
    names: Optional[TomoNames] = None
    tomograms: dict = field(default_factory=dict)
    #: read only this tomogram's table (see :meth:`selected`); None reads every table
    only: Optional[str] = None

    def selected(self, names: Sequence[str], source: str = "") -> list[str]:
        """The tomogram names of a file to read: all of them, or with :attr:`only` the one
        so named, else the file's only one (a file of several tomograms none of which is
        :attr:`only` is an error naming them)."""
        names = list(dict.fromkeys(names))
        if self.only is None or len(names) <= 1:
            return names
        if self.only in names:
            return [self.only]
        where = f"{source} holds" if source else "The file holds"
        raise DeepETPickerError(
            f"{where} picks of several tomograms ({', '.join(sorted(map(str, names)))}) and "
            f"none is named {self.only!r}. Open the tomogram the picks belong to, or convert "
            f"the file with `deepetpicker convert`.")

    def shape(self, name: str, index: int = 0) -> Optional[Shape]:
        spec = self.shapes
        if spec is None:
            return None
        if isinstance(spec, Mapping):
            value = spec.get(name)
        elif len(spec) == 3 and all(np.isscalar(v) for v in spec):
            value = spec
        elif len(spec) == 1:
            value = spec[0]
        else:
            value = spec[index] if index < len(spec) else None
        if value is None:
            return None
        value = tuple(int(v) for v in value)
        if len(value) != 3 or min(value) < 1:
            raise DeepETPickerError(
                f"Tomogram shape {value} for '{name}' is not (z, y, x) with positive sizes.")
        return value  # type: ignore[return-value]

    def voxel(self, name: str, fallback: Optional[float] = None) -> Optional[float]:
        spec = self.voxel_size
        value = spec.get(name) if isinstance(spec, Mapping) else spec
        if value is None:
            value = fallback
        if value is not None and not (np.isfinite(value) and value > 0):
            raise DeepETPickerError(
                f"Voxel size {value!r} for '{name}' is not a positive number of Angstrom.")
        return None if value is None else float(value)

    def known_names(self) -> set[str]:
        """Tomogram names the shapes, voxel sizes or tomograms are given for."""
        names = set(self.tomograms)
        for spec in (self.shapes, self.voxel_size):
            if isinstance(spec, Mapping):
                names |= set(spec)
        return names

    def tomogram_hint(self, name: str) -> str:
        """Why no tomogram of ``name`` was found among those given with --tomogram."""
        if not self.tomograms:
            return ""
        given = ", ".join(f"{stem} ({path})" for stem, path in sorted(self.tomograms.items()))
        return (f" No tomogram given with --tomogram is named '{name}' (given: {given}); a "
                f"tomogram matches when its file name without extension is the picks' "
                f"tomogram name.")


_POSITIVE_HINTS = {
    "Binning": "give the tilt-series pixels per tomogram voxel, e.g. --binning 4",
    "Tilt-series pixel size": "give the Angstrom per pixel of the unbinned tilt series, e.g. "
                              "--tilt-series-pixel-size 1.35",
}


def positive(value: object, what: str) -> Optional[float]:
    """``value`` as a number when it is a positive one (None stays None); otherwise an
    error with the hint for ``what`` ("Binning" or "Tilt-series pixel size")."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (np.isfinite(number) and number > 0):
        raise DeepETPickerError(
            f"{what} {value!r} is not a positive number; {_POSITIVE_HINTS[what]}.")
    return number


def require_voxel(fmt: str, name: str, voxel: Optional[float], source: str = "",
                  geometry: Optional[Geometry] = None) -> float:
    """``voxel``, or an error saying why format ``fmt`` needs the voxel size of tomogram
    ``name`` and how to give it."""
    if voxel is None:
        where = f"{source}: " if source else ""
        hint = geometry.tomogram_hint(name) if geometry else ""
        raise DeepETPickerError(
            f"{where}the {fmt} format stores coordinates in Angstrom, so the voxel size of "
            f"tomogram '{name}' is needed. Give it with --voxel-size A (Angstrom per voxel) or "
            f"point --tomogram at the tomogram so it is read from the MRC header"
            f"{' (or give --binning with the tilt-series pixel size)' if fmt == 'relion5' else ''}"
            f".{hint}")
    return voxel


def require_shape(name: str, shape: Optional[Shape], source: str = "",
                  geometry: Optional[Geometry] = None) -> Shape:
    """``shape``, or an error saying why RELION 5 needs the shape of tomogram ``name`` and
    how to give it."""
    if shape is None:
        where = f"{source}: " if source else ""
        hint = geometry.tomogram_hint(name) if geometry else ""
        raise DeepETPickerError(
            f"{where}RELION 5 coordinates are Angstrom from the tomogram centre, so the shape "
            f"of tomogram '{name}' is needed. Give it with --shape Z Y X or point --tomogram "
            f"at the tomogram.{hint}")
    return shape


def relion4_binning(name: str, voxel: Optional[float], ts_pixel: Optional[float],
                    binning: Optional[float] = None,
                    source: str = "") -> tuple[float, Optional[float], Optional[float]]:
    """``(binning, voxel size, tilt-series pixel size)`` of tomogram ``name`` for RELION 4.

    RELION 4 coordinates are pixels of the unbinned tilt series (``voxel * binning``). An
    explicit ``binning`` is used, and must agree with the two pixel sizes when both are
    known; otherwise the binning is ``voxel / ts_pixel`` when that is a whole number. Pixel
    sizes that are both known but give no whole binning are refused: nothing is guessed.
    Without a tilt-series pixel size the binning is 1 (the tomogram is the tilt series'
    size) and the tilt-series pixel size is the voxel size.
    """
    where = f"{source}: " if source else ""
    if binning is not None:
        if voxel is not None and ts_pixel is not None \
                and not math.isclose(voxel, ts_pixel * binning, rel_tol=BINNING_TOLERANCE):
            raise DeepETPickerError(
                f"{where}tomogram '{name}': voxel size {voxel:g} A is not binning {binning:g} x "
                f"tilt-series pixel size {ts_pixel:g} A (= {ts_pixel * binning:g} A). The pixel "
                f"sizes disagree: check --binning, --voxel-size (or the tomogram header) and "
                f"--tilt-series-pixel-size (or the file's {TS_PIXEL}).")
        if voxel is None and ts_pixel is not None:
            voxel = ts_pixel * binning
        if ts_pixel is None and voxel is not None:
            ts_pixel = voxel / binning
        return float(binning), voxel, ts_pixel
    if voxel is not None and ts_pixel is not None:
        ratio = voxel / ts_pixel
        whole = round(ratio)
        if whole < 1 or abs(ratio - whole) > BINNING_TOLERANCE * ratio:
            raise DeepETPickerError(
                f"{where}tomogram '{name}': voxel size {voxel:g} A and tilt-series pixel size "
                f"{ts_pixel:g} A give no whole binning (ratio {ratio:.4g}), so the RELION 4 "
                f"coordinates cannot be scaled without guessing. Say which with --binning B "
                f"(tilt-series pixels per tomogram voxel), or correct --voxel-size / "
                f"--tilt-series-pixel-size.")
        return float(whole), voxel, ts_pixel
    if ts_pixel is not None:
        return 1.0, ts_pixel, ts_pixel
    return 1.0, voxel, voxel


def object_file_picks(stem: str, points: Sequence, ids: ClassIds,
                      geometry: Geometry) -> list[Picks]:
    """The one table of a file that holds one object's points in voxels (``.box``, an
    ndjson of points): its tomogram, class and object name come from the file name
    ``stem``."""
    tomo, cls, name = split_object_stem(stem, ids, geometry.known_names())
    xyz = np.array(points, dtype=np.float64).reshape(-1, 3)
    meta = {"object": name} if name else {}
    return [Picks(np.full(len(xyz), cls), xyz, None, tomo, geometry.voxel(tomo), meta)]
