"""Slice geometry and contrast shared by the viewer and the library's pictures: which volume
axes each of the three views shows, voxel <-> slice coordinates, the pick under the cursor,
where a pick's sphere cuts a slice, percentile contrast limits, and one colour per class."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000",
           "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9", "#ffe119"]


def class_colour(class_id: int) -> str:
    """A distinct colour for a 1-based class id (20 colours, then repeating)."""
    return PALETTE[(int(class_id) - 1) % len(PALETTE)]


VIEWS = ("xy", "zy", "xz")
#: (horizontal, vertical, slice) axis names of each view.
VIEW_AXES = {"xy": ("x", "y", "z"), "zy": ("z", "y", "x"), "xz": ("x", "z", "y")}
_XYZ = {"x": 0, "y": 1, "z": 2}


def view_axes(view: str) -> tuple[int, int, int]:
    """Indices into an ``(x, y, z)`` triple of the view's horizontal, vertical and slice axes."""
    return tuple(_XYZ[a] for a in VIEW_AXES[view])  # type: ignore[return-value]


def slice_to_volume(view: str, h: float, v: float, position: Sequence[float]) -> np.ndarray:
    """``(x, y, z)`` of the point ``(h, v)`` (the view's horizontal and vertical voxel
    coordinates) on the slice of ``view`` that goes through ``position`` ``(x, y, z)``: the
    slice coordinate is taken from ``position``."""
    hi, vi, _ = view_axes(view)
    xyz = np.array(position, dtype=np.float64).reshape(3)
    xyz[hi], xyz[vi] = float(h), float(v)
    return xyz


def volume_to_slice(view: str, xyz: Sequence[float]) -> tuple[float, float, float]:
    """``(h, v, s)`` of the voxel point ``xyz`` ``(x, y, z)`` in ``view``: its horizontal and
    vertical coordinates on the view and the index of the slice it lies in."""
    hi, vi, si = view_axes(view)
    return float(xyz[hi]), float(xyz[vi]), float(xyz[si])


def inside_volume(xyz: Sequence[float], shape: Sequence[int]) -> bool:
    """Whether the point ``xyz`` ``(x, y, z)`` lies in a voxel of a ``(z, y, x)`` volume of
    ``shape``: voxel ``i`` spans ``[i - 0.5, i + 0.5]`` around its centre ``i``."""
    point = np.asarray(xyz, dtype=np.float64).reshape(3)
    upper = np.asarray(shape, dtype=np.float64)[::-1] - 0.5
    return bool(np.all(point >= -0.5) and np.all(point <= upper))


def pick_at(point: Sequence[float], centres: np.ndarray, radii: np.ndarray,
            min_radius: float = 1.0) -> Optional[int]:
    """Position in ``centres`` (n, 2) of the circle containing ``point`` whose centre is
    nearest, or None. Circles smaller than ``min_radius`` count as that large, so tiny ones
    can still be hit."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if len(centres) == 0:
        return None
    d = np.hypot(centres[:, 0] - point[0], centres[:, 1] - point[1])
    inside = d <= np.maximum(np.asarray(radii, dtype=np.float64), min_radius)
    if not inside.any():
        return None
    candidates = np.nonzero(inside)[0]
    return int(candidates[np.argmin(d[candidates])])


def percentile_limits(values: np.ndarray, low: float = 1.0,
                      high: float = 99.0) -> tuple[float, float]:
    """Display limits from two percentiles of ``values`` (a flat subsample)."""
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [low, high])
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def circle_sections(xyz: np.ndarray, radii: np.ndarray, view: str, index: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cross-sections of spheres with the slice ``index`` of a view.

    ``xyz``: (N, 3) sphere centres (0-based voxels), ``radii``: (N,) radii. Returns the indices
    of the spheres that cut the slice, their centres in the view's (horizontal, vertical)
    voxel coordinates, and the radii of their circles ``sqrt(r^2 - d^2)``, ``d`` being the
    distance of the centre from the slice.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    radii = np.asarray(radii, dtype=np.float64).reshape(-1)
    h, v, s = view_axes(view)
    dist = np.abs(xyz[:, s] - float(index))
    cut = np.nonzero(dist < radii)[0]
    centres = xyz[cut][:, [h, v]]
    section = np.sqrt(radii[cut] ** 2 - dist[cut] ** 2)
    return cut, centres, section
