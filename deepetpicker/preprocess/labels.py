"""Weak labels and occupancy maps painted from particle centres.

Weak label of one particle (Liu et al. 2024, and the original program's
``utils/coords2labels.py``): with label diameter ``d``, ``sigma = r = (d - 1) / 2``; every
integer offset ``o`` from the particle's voxel in the cube ``[-r, r]^3`` gets the class id when
``exp(-|o|^2 / (2 sigma^2)) > t_g``. The three label types are three thresholds, the
original's constants, evaluated in float64 exactly as the original evaluates them:

- TBall, ``"gaussian"`` in configs (the default): ``t_g = 0.367879`` (just below ``e^-1``), so
  ``|o|^2 <= 2 r^2``: a ball truncated by the cube (d = 5: 93 voxels, 9: 625, 11: 1203);
- Ball, ``"sphere"``: ``t_g = 0.60653`` (just below ``e^-0.5``), so ``|o| <= r``
  (d = 11: 515 voxels, 23: 5575); occupancy maps use this mask with each class's diameter;
- Cubic, ``"cubic"``: ``t_g = 0.223`` (just below ``e^-1.5``), the whole cube, ``d^3`` voxels.

Centring: the cube is placed on the integer voxel grid around the particle's voxel
``floor(c + 0.5)``. An odd diameter spans exactly ``d`` voxels per axis, the original's set.
The original program fails on an even diameter (its template has ``d`` samples but it pastes
``d + 1``); here an even diameter keeps the same rule: ``r = (d - 1) / 2`` is then a half
integer, the integer offsets ``|o_i| <= r`` span ``d - 1`` voxels per axis, symmetric about the
particle's voxel, and ``sigma = r`` makes the mask fuller than that of ``d - 1`` (d = 10 lies
between d = 9 and d = 11). A diameter of 1 labels the particle's voxel only.

Where the masks of two particles overlap, each voxel goes to the particle whose centre is
nearer (ties: the earlier row of the table), and a particle never removes voxels of another
outside its own mask. (The original lets the later particle take the overlap, and in an
occupancy map its whole cube.) Particles near the border are clipped to the volume, not
dropped.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np
from scipy.spatial import cKDTree

from deepetpicker.config import canonical_label_type
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.values import per_class

# Report progress every this many particles while painting.
_REPORT_EVERY = 512


def _check_diameter(diameter, what: str = "label diameter") -> int:
    try:
        value = float(diameter)
    except (TypeError, ValueError):
        raise DeepETPickerError(
            f"{what} {diameter!r} is not a number; give a whole number of voxels.") from None
    if not np.isfinite(value) or value != int(value) or value < 1:
        raise DeepETPickerError(
            f"{what} {diameter!r} is not allowed; give a whole number of voxels, 1 or more "
            f"(about the particle diameter in voxels of this tomogram).")
    return int(value)


# The original program's thresholds t_g on exp(-|o|^2 / (2 sigma^2)), by label type.
LABEL_THRESHOLDS = {"gaussian": 0.367879, "sphere": 0.60653, "cubic": 0.223}


def weak_label_mask(diameter: int, label_type: str = "gaussian") -> np.ndarray:
    """The label of one particle as a boolean cube of side ``2 * ((diameter - 1) // 2) + 1``.

    The cube's centre voxel is the particle's voxel; see the module docstring for the rule
    of each ``label_type`` (``"gaussian"``/TBall, ``"sphere"``/Ball, ``"cubic"``).
    """
    d = _check_diameter(diameter)
    kind = canonical_label_type(label_type)
    half = (d - 1) // 2
    if d <= 2:
        return np.ones((1, 1, 1), dtype=bool)
    o = np.arange(-half, half + 1, dtype=np.float64)
    sq = o[:, None, None] ** 2 + o[None, :, None] ** 2 + o[None, None, :] ** 2
    sigma = (d - 1) / 2.0
    return np.exp(-sq / (2.0 * sigma * sigma)) > LABEL_THRESHOLDS[kind]


def ball_mask(diameter: int) -> np.ndarray:
    """A Ball (``|o| <= (diameter - 1) / 2``) on the same grid as :func:`weak_label_mask`."""
    return weak_label_mask(diameter, "sphere")


def _centre_voxels(picks: Picks) -> np.ndarray:
    """Voxel index (z, y, x) of each pick: ``floor(c + 0.5)`` (halves round up)."""
    return np.floor(picks.zyx + 0.5).astype(np.int64)


def _paint(shape: Sequence[int], centres: np.ndarray, voxels: np.ndarray,
           templates: list[np.ndarray], template_of: np.ndarray, values: np.ndarray,
           dtype, report: Optional[Callable[[int, int], None]] = None,
           out: Optional[np.ndarray] = None) -> np.ndarray:
    """Paint ``values[i]`` in ``templates[template_of[i]]`` placed at ``voxels[i]``.

    ``centres`` are the exact (z, y, x) centres used by the nearest-centre rule. The result
    does not depend on the order of painting: a voxel belongs to the nearest particle among
    those whose mask covers it (ties to the lower index). ``out`` (zeros of ``shape``, e.g.
    a writable memory map) is painted in place instead of a new array of ``dtype``.
    """
    shape = tuple(int(s) for s in shape)
    if out is None:
        out = np.zeros(shape, dtype=dtype)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    n = len(voxels)
    if n == 0:
        return out
    halves = np.array([t.shape[0] // 2 for t in templates], dtype=np.int64)[template_of]
    lo = voxels - halves[:, None]
    hi = voxels + halves[:, None] + 1
    lo_c = np.maximum(lo, 0)
    hi_c = np.minimum(hi, np.array(shape))

    # Pairs of particles whose cubes intersect (Chebyshev distance <= sum of half sizes).
    neighbours: list[list[int]] = [[] for _ in range(n)]
    if n > 1:
        tree = cKDTree(voxels)
        for i, j in tree.query_pairs(r=2 * int(halves.max()) + 0.5, p=np.inf):
            if np.all(np.abs(voxels[i] - voxels[j]) <= halves[i] + halves[j]):
                neighbours[i].append(j)
                neighbours[j].append(i)

    for i in range(n):
        if report is not None and i % _REPORT_EVERY == 0:
            report(i, n)
        if np.any(hi_c[i] <= lo_c[i]):
            continue  # the cube lies wholly outside the volume
        tpl = templates[template_of[i]]
        own = tuple(slice(a - b, c - b) for a, b, c in zip(lo_c[i], lo[i], hi_c[i]))
        keep = tpl[own].copy()
        for j in neighbours[i]:
            # Intersection of the two clipped cubes, in volume coordinates.
            a = np.maximum(lo_c[i], lo_c[j])
            b = np.minimum(hi_c[i], hi_c[j])
            if np.any(b <= a):
                continue
            other = templates[template_of[j]][
                tuple(slice(s - t, e - t) for s, e, t in zip(a, b, lo[j]))]
            grid = np.ogrid[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
            di = sum((g - c) ** 2 for g, c in zip(grid, centres[i]))
            dj = sum((g - c) ** 2 for g, c in zip(grid, centres[j]))
            closer = (dj < di) | ((dj == di) & (j < i))
            sub = tuple(slice(s - t, e - t) for s, e, t in zip(a, b, lo_c[i]))
            keep[sub] &= ~(other & closer)
        region = out[tuple(slice(a, b) for a, b in zip(lo_c[i], hi_c[i]))]
        region[keep] = values[i]
    if report is not None:
        report(n, n)
    return out


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (z, y, x) with positive sizes, got {shape}")
    return shape  # type: ignore[return-value]


def paint_labels(shape: Sequence[int], picks: Picks, diameter: Union[int, Sequence[int]],
                 label_type: str = "gaussian",
                 report: Optional[Callable[[int, int], None]] = None,
                 out: Optional[np.ndarray] = None) -> np.ndarray:
    """Weak-label volume ``(z, y, x)`` uint8: the class id of each pick in its mask, 0 elsewhere.

    ``diameter``: one label diameter for every class, or one per class (class 1 first; the
    particles of class k get a mask of ``diameter[k - 1]``). Where masks overlap, each voxel
    goes to the nearest centre, whatever the sizes. ``report(done, total)`` is called every
    few hundred particles (a job passes a function that also checks for cancellation). With
    ``out`` (a zero-filled array of ``shape`` of any integer or float type, e.g. the memory
    map of an output file) the labels are painted into it and it is returned.
    """
    shape = _check_shape(shape)
    if len(picks) and (picks.classes.min() < 1 or picks.classes.max() > 255):
        bad = int(picks.classes[(picks.classes < 1) | (picks.classes > 255)][0])
        raise DeepETPickerError(
            f"class id {bad} in the picks of {picks.tomo_name or 'this tomogram'} cannot be "
            f"a label; class ids run from 1 to 255.")
    num_cls = int(picks.classes.max()) if len(picks) else 1
    try:
        diameters = per_class(diameter, num_cls, "label diameter")
    except DeepETPickerError as err:
        raise DeepETPickerError(f"{err} (the picks of {picks.tomo_name or 'this tomogram'} "
                                f"have class ids up to {num_cls})") from None
    except (TypeError, ValueError):
        raise DeepETPickerError(f"label diameter {diameter!r} is not a number or one number "
                                f"per class; give whole numbers of voxels.") from None
    masks: dict[float, np.ndarray] = {}
    for d in diameters:
        if d not in masks:
            masks[d] = weak_label_mask(d, label_type)
    templates = list(masks.values())
    index = {d: i for i, d in enumerate(masks)}
    template_of = np.array([index[d] for d in diameters], dtype=np.int64)
    if len(picks):
        template_of = template_of[picks.classes - 1]
    else:
        template_of = np.zeros(0, dtype=np.int64)
    return _paint(shape, picks.zyx, _centre_voxels(picks), templates, template_of,
                  picks.classes, np.uint8, report, out)


def paint_occupancy(shape: Sequence[int], picks: Picks, diameters_per_class: Sequence[int],
                    report: Optional[Callable[[int, int], None]] = None,
                    out: Optional[np.ndarray] = None) -> np.ndarray:
    """Occupancy volume ``(z, y, x)`` int32: instance ids 1..N (row order of ``picks``).

    Each particle is a Ball (``|o| <= (d - 1) / 2``) of its class's diameter
    ``diameters_per_class[class - 1]``; overlaps follow the nearest-centre rule. ``report``
    and ``out`` as in :func:`paint_labels` (a float32 ``out`` holds ids exactly up to 2^24).
    """
    shape = _check_shape(shape)
    diameters = [_check_diameter(d, f"occupancy diameter of class {k}")
                 for k, d in enumerate(diameters_per_class, start=1)]
    if len(picks):
        too_big = picks.classes > len(diameters)
        if np.any(too_big | (picks.classes < 1)):
            bad = int(picks.classes[too_big | (picks.classes < 1)][0])
            raise DeepETPickerError(
                f"class id {bad} in the picks of {picks.tomo_name or 'this tomogram'} has no "
                f"occupancy diameter ({len(diameters)} given: {diameters}). Give one "
                f"ocp_diameter per class.")
    templates = [ball_mask(d) for d in diameters]
    ids = np.arange(1, len(picks) + 1, dtype=np.int64)
    return _paint(shape, picks.zyx, _centre_voxels(picks), templates,
                  picks.classes - 1, ids, np.int32, report, out)
