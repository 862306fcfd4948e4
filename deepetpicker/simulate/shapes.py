"""Particle species and their shapes: the built-in classes, a species' density template, and
placing a template (or any box) into a volume at a position and a rotation."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence, Union

import numpy as np
from scipy import ndimage

from deepetpicker.errors import DeepETPickerError

#: Shapes the particle builder knows.
SHAPES = ("complex", "barrel", "rod", "globule", "ring", "shell", "stalk")


@dataclass(frozen=True)
class ParticleClass:
    """One particle species: a ``name``, a ``shape`` from :data:`SHAPES`, and the diameter of
    its bounding sphere in voxels (no particle extends beyond ``diameter / 2`` from its centre).
    """

    name: str
    shape: str
    diameter: float


#: The built-in classes; ``classes=K`` takes the first K.
BUILTIN_CLASSES = (
    ParticleClass("ribosome", "complex", 24.0),   # large, multi-lobed
    ParticleClass("proteasome", "barrel", 16.0),  # barrel of stacked rings, hollow core
    ParticleClass("dimer", "rod", 18.0),          # elongated, two lobes
    ParticleClass("globule", "globule", 8.0),     # small and compact
)


# ---------------------------------------------------------------------------------------------
# Particle shapes
# ---------------------------------------------------------------------------------------------
def _blobs(shape: str) -> np.ndarray:
    """Gaussian blobs ``(cx, cy, cz, sigma)`` building ``shape`` in units of the radius.

    The random parts come from a generator seeded by the shape name, so a species looks the
    same in every tomogram and every run.
    """
    rng = np.random.default_rng(zlib.crc32(shape.encode()))
    rows: list[tuple[float, float, float, float]] = []

    def fill_ellipsoid(centre, semi, n, sigma):
        pts = rng.uniform(-1.0, 1.0, size=(8 * n, 3))
        pts = pts[np.sum(pts ** 2, axis=1) <= 1.0][:n] * np.asarray(semi) + np.asarray(centre)
        rows.extend((*p, sigma) for p in pts)

    if shape == "complex":      # large subunit, small subunit on top, two stalks
        fill_ellipsoid((0.0, 0.0, -0.22), (0.52, 0.5, 0.42), 70, 0.13)
        fill_ellipsoid((0.08, 0.0, 0.42), (0.45, 0.32, 0.2), 30, 0.12)
        rows.extend([(-0.62, 0.1, -0.05, 0.12), (-0.72, 0.15, 0.05, 0.1),
                     (0.6, -0.25, -0.25, 0.12), (0.7, -0.3, -0.2, 0.1)])
    elif shape == "barrel":     # two rings of seven subunits with a central channel
        for zc, turn in ((-0.3, 0.0), (0.3, np.pi / 7)):
            for i in range(7):
                a = 2 * np.pi * i / 7 + turn
                rows.append((0.58 * np.cos(a), 0.58 * np.sin(a), zc, 0.2))
                rows.append((0.58 * np.cos(a), 0.58 * np.sin(a), zc * 1.9, 0.14))
    elif shape == "rod":        # two lobes on the z axis and a neck
        for zc in (-0.48, 0.48):
            fill_ellipsoid((0.0, 0.0, zc), (0.26, 0.26, 0.3), 14, 0.16)
        rows.extend([(0.0, 0.0, 0.0, 0.15), (0.06, 0.0, -0.12, 0.14), (-0.06, 0.0, 0.12, 0.14)])
    elif shape == "globule":
        fill_ellipsoid((0.0, 0.0, 0.0), (0.42, 0.36, 0.32), 10, 0.26)
    elif shape == "ring":       # one flat ring of twelve subunits around an empty centre
        for i in range(12):
            a = 2 * np.pi * i / 12
            rows.append((0.72 * np.cos(a), 0.72 * np.sin(a), 0.0, 0.14))
    elif shape == "shell":      # a hollow sphere, as a virus-like particle
        n = 60
        k = np.arange(n) + 0.5
        polar, azimuth = np.arccos(1 - 2 * k / n), np.pi * (1 + 5 ** 0.5) * k
        for t, a in zip(polar, azimuth):
            rows.append((0.78 * np.sin(t) * np.cos(a), 0.78 * np.sin(t) * np.sin(a),
                         0.78 * np.cos(t), 0.11))
    elif shape == "stalk":      # a thin rod with a knob at one end
        for zc in np.linspace(-0.8, 0.35, 7):
            rows.append((0.0, 0.0, zc, 0.11))
        fill_ellipsoid((0.0, 0.0, 0.6), (0.28, 0.28, 0.22), 8, 0.14)
    else:  # pragma: no cover - callers validate the shape
        raise ValueError(shape)
    return np.asarray(rows, dtype=np.float64)


@lru_cache(maxsize=32)
def particle_template(shape: str, diameter: float) -> np.ndarray:
    """Occupancy (0..1) of one particle in its own frame, in a cube of odd edge.

    The blobs are summed, saturated to a solid body and cut softly at the bounding sphere.
    """
    radius = diameter / 2.0
    half = int(np.ceil(radius)) + 1
    ax = np.arange(-half, half + 1, dtype=np.float64)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    dens = np.zeros_like(x)
    for cx, cy, cz, s in _blobs(shape):
        sig = max(s * radius, 0.7)
        dens += np.exp(-((x - cx * radius) ** 2 + (y - cy * radius) ** 2
                         + (z - cz * radius) ** 2) / (2 * sig * sig))
    occ = 1.0 - np.exp(-2.5 * dens)
    r = np.sqrt(x * x + y * y + z * z)
    occ *= np.clip(radius - r + 0.5, 0.0, 1.0)
    occ[occ < 0.02] = 0.0
    return occ.astype(np.float32)


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random rotations as unit quaternions ``(w, x, y, z)``."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return q


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def add_box(volume: np.ndarray, box: np.ndarray, corner: Sequence[int]) -> None:
    """Add ``box`` to ``volume`` with its first voxel at ``corner`` (z, y, x), clipped."""
    dst, src = [], []
    for c, b, n in zip(corner, box.shape, volume.shape):
        lo, hi = max(c, 0), min(c + b, n)
        if hi <= lo:
            return
        dst.append(slice(lo, hi))
        src.append(slice(lo - c, hi - c))
    volume[tuple(dst)] += box[tuple(src)]


def stamp_particle(volume: np.ndarray, template: np.ndarray, centre_zyx: Sequence[float],
                   quat: np.ndarray, scale: float) -> None:
    """Add ``template`` rotated by ``quat`` at integer ``centre_zyx`` (z, y, x), times ``scale``."""
    half = template.shape[0] // 2
    ax = np.arange(-half, half + 1, dtype=np.float64)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    world = np.stack([x.ravel(), y.ravel(), z.ravel()])           # (3, M) x, y, z
    local = _quat_to_matrix(quat).T @ world + half                 # template frame, x y z
    vals = ndimage.map_coordinates(template, local[::-1], order=1, mode="constant", cval=0.0)
    box = (vals.reshape(template.shape) * scale).astype(np.float32)
    add_box(volume, box, [int(c) - half for c in centre_zyx])


def radial_box(radius_out: float, profile: Callable[[np.ndarray], np.ndarray],
               stretch_z: float = 1.0) -> np.ndarray:
    """A cube holding ``profile(r)`` of the (z-stretched) distance r from its centre."""
    half = int(np.ceil(radius_out)) + 2
    ax = np.arange(-half, half + 1, dtype=np.float64)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    r = np.sqrt(x * x + y * y + (z * stretch_z) ** 2)
    return profile(r).astype(np.float32)



def resolve_classes(classes: Union[int, Sequence[Any], None]) -> list[ParticleClass]:
    """Turn ``classes`` (a count, built-in names, dicts or :class:`ParticleClass`) into specs.

    ``3`` means the first three built-in classes; a name is a built-in class name (or a shape
    name, with the built-in diameter); a dict needs ``name``, ``shape`` and ``diameter``.
    """
    if classes is None:
        classes = 3
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        k = int(classes)
        if not 1 <= k <= len(BUILTIN_CLASSES):
            raise DeepETPickerError(
                f"classes={k}: the simulator has {len(BUILTIN_CLASSES)} built-in particle "
                f"classes; ask for 1 to {len(BUILTIN_CLASSES)}, or pass class specs "
                f"(name, shape, diameter) for more.")
        return list(BUILTIN_CLASSES[:k])
    by_name = {c.name: c for c in BUILTIN_CLASSES}
    by_name.update({c.shape: c for c in BUILTIN_CLASSES})
    specs: list[ParticleClass] = []
    for item in classes:
        if isinstance(item, ParticleClass):
            spec = item
        elif isinstance(item, str):
            if item not in by_name:
                raise DeepETPickerError(
                    f"Unknown particle class {item!r}; built-in classes are "
                    f"{', '.join(sorted(by_name))}.")
            spec = by_name[item]
        elif isinstance(item, dict):
            missing = {"name", "shape", "diameter"} - set(item)
            if missing:
                raise DeepETPickerError(
                    f"Particle class {item!r} lacks {', '.join(sorted(missing))}; give name, "
                    f"shape (one of {', '.join(SHAPES)}) and diameter in voxels.")
            try:
                spec = ParticleClass(str(item["name"]), str(item["shape"]),
                                     float(item["diameter"]))
            except (TypeError, ValueError):
                raise DeepETPickerError(
                    f"Particle class {item.get('name')!r}: diameter {item['diameter']!r} is not "
                    f"a number of voxels.") from None
        else:
            raise DeepETPickerError(
                f"Particle class {item!r} is not a name, a dict or a ParticleClass.")
        if spec.shape not in SHAPES:
            raise DeepETPickerError(
                f"Particle class {spec.name!r}: unknown shape {spec.shape!r}; use one of "
                f"{', '.join(SHAPES)}.")
        if not 4.0 <= spec.diameter <= 64.0:
            raise DeepETPickerError(
                f"Particle class {spec.name!r}: diameter {spec.diameter:g} voxels is outside "
                f"4..64; choose a diameter in that range.")
        specs.append(spec)
    if not specs:
        raise DeepETPickerError("classes is empty; give a number of classes or class specs.")
    return specs

