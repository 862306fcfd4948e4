"""Coordinate conventions: the only conversions between coordinate systems in the project.

Inside DeepETPicker a pick is at 0-based voxel coordinates ``x, y, z`` of its tomogram; each
function here turns that into one other program's convention or back.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def to_one_based(xyz: np.ndarray) -> np.ndarray:
    """0-based voxel coordinates -> 1-based (Dynamo, MATLAB)."""
    return np.asarray(xyz, dtype=np.float64) + 1.0


def from_one_based(xyz: np.ndarray) -> np.ndarray:
    """1-based voxel coordinates -> 0-based."""
    return np.asarray(xyz, dtype=np.float64) - 1.0


def tomogram_centre(shape: Sequence[int]) -> np.ndarray:
    """RELION's tomogram centre ``(nx/2, ny/2, nz/2)`` in 0-based voxels, for shape (z, y, x)."""
    nz, ny, nx = (float(s) for s in shape)
    return np.array([nx, ny, nz]) / 2.0


def to_angstrom(xyz: np.ndarray, voxel_size: float) -> np.ndarray:
    """0-based voxels -> Angstrom from the first voxel's centre (copick)."""
    return np.asarray(xyz, dtype=np.float64) * float(voxel_size)


def from_angstrom(xyz_a: np.ndarray, voxel_size: float) -> np.ndarray:
    """Angstrom from the first voxel's centre -> 0-based voxels."""
    return np.asarray(xyz_a, dtype=np.float64) / float(voxel_size)


def to_centred_angstrom(xyz: np.ndarray, shape: Sequence[int], voxel_size: float) -> np.ndarray:
    """0-based voxels -> Angstrom relative to the tomogram centre (RELION 5)."""
    return to_angstrom(np.asarray(xyz, dtype=np.float64) - tomogram_centre(shape), voxel_size)


def from_centred_angstrom(xyz_a: np.ndarray, shape: Sequence[int],
                          voxel_size: float) -> np.ndarray:
    """Angstrom relative to the tomogram centre (RELION 5) -> 0-based voxels."""
    return from_angstrom(xyz_a, voxel_size) + tomogram_centre(shape)


def to_tilt_series_pixels(xyz: np.ndarray, binning: float) -> np.ndarray:
    """0-based voxels of a tomogram binned ``binning`` times -> 0-based pixels of the unbinned
    tilt series (RELION 4 rlnCoordinate)."""
    return np.asarray(xyz, dtype=np.float64) * float(binning)


def from_tilt_series_pixels(xyz: np.ndarray, binning: float) -> np.ndarray:
    """0-based unbinned tilt-series pixels (RELION 4) -> 0-based voxels of the binned tomogram."""
    return np.asarray(xyz, dtype=np.float64) / float(binning)
