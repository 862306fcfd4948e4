"""Data augmentation of training patches: mirror and spatial transforms.

Settings come from the training config's ``augment`` dict (see
``deepetpicker.config.DEFAULT_AUGMENT``)::

    mirror       flip each axis with probability 1/2 (on/off)
    crop         shift each patch by up to N // 8 voxels per axis at random (on/off)
    elastic      probability of a smooth random elastic deformation
    rotate       probability of a random rotation (up to ``max_angle`` degrees about each axis)
    scale        probability of a random isotropic scaling within ``scale_range``

Rotation, scaling and elastic deformation are one resampling of a context block around the
patch (read from the tomogram with a margin, so no empty corners appear): the tomogram is
interpolated linearly, the labels with nearest-neighbour interpolation, so class ids stay
class ids. All random draws come from a ``numpy.random.Generator`` passed in, so a sample is
a pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError

#: Coarse control grid of the elastic deformation (points per axis).
ELASTIC_POINTS = 3
#: Standard deviation of the control-point displacements, as a fraction of the patch edge.
ELASTIC_SIGMA = 0.03


@dataclass(frozen=True)
class AugmentSettings:
    """Which augmentations run, and with what probability/range."""

    mirror: bool = True
    crop: bool = True
    elastic: float = 0.1
    rotate: float = 0.1
    scale: float = 0.1
    max_angle: float = 15.0
    scale_range: tuple = (0.95, 1.05)

    @classmethod
    def from_config(cls, value: Any) -> "AugmentSettings":
        """From the config's ``augment`` dict; ``None``/``False`` switch everything off."""
        if value is None or value is False:
            return cls.off()
        if value is True:
            return cls()
        if not isinstance(value, dict):
            raise DeepETPickerError(
                f"augment = {value!r}: expected a dict such as {{'mirror': true, 'crop': true, "
                f"'elastic': 0.1, 'rotate': 0.1, 'scale': 0.1}} or false.")
        known = {k: value[k] for k in ("mirror", "crop", "elastic", "rotate", "scale",
                                       "max_angle") if k in value}
        if "scale_range" in value:
            known["scale_range"] = tuple(float(v) for v in value["scale_range"])
        return cls(**known)

    @classmethod
    def off(cls) -> "AugmentSettings":
        return cls(mirror=False, crop=False, elastic=0.0, rotate=0.0, scale=0.0)


@dataclass(frozen=True)
class SampleTransform:
    """The random transform of one sample, drawn by :func:`draw_transform`."""

    shift: tuple            # voxels added to the patch centre (z, y, x)
    flips: tuple            # axes to flip after resampling
    matrix: Optional[np.ndarray]        # 3x3 output<-input linear map, or None
    displacement: Optional[np.ndarray]  # (3, P, P, P) elastic control displacements, or None

    @property
    def resamples(self) -> bool:
        return self.matrix is not None or self.displacement is not None


def rotation_matrix(angles_deg: Sequence[float]) -> np.ndarray:
    """Rotation about the z, y and x axes (in that order) by the given angles in degrees."""
    az, ay, ax = (math.radians(float(a)) for a in angles_deg)

    def plane(i: int, j: int, a: float) -> np.ndarray:
        m = np.eye(3)
        m[i, i] = m[j, j] = math.cos(a)
        m[i, j], m[j, i] = -math.sin(a), math.sin(a)
        return m

    # rotating about z turns the (y, x) plane, about y the (z, x) plane, about x the (z, y) plane
    return plane(1, 2, az) @ plane(0, 2, ay) @ plane(0, 1, ax)


def draw_transform(rng: np.random.Generator, settings: AugmentSettings, patch: int
                   ) -> SampleTransform:
    """Draw one sample's transform. The number of draws is fixed, whatever is switched on,
    so changing one setting does not change the other random choices."""
    u = rng.random(4)
    crop_max = patch // 8
    shift = rng.integers(-crop_max, crop_max + 1, size=3)
    flip_u = rng.random(3)
    angles = rng.uniform(-1.0, 1.0, size=3) * settings.max_angle
    lo, hi = settings.scale_range
    zoom = rng.uniform(lo, hi)
    displacement = rng.standard_normal((3,) + (ELASTIC_POINTS,) * 3) * (ELASTIC_SIGMA * patch)

    matrix = None
    if u[0] < settings.rotate:
        matrix = rotation_matrix(angles)
    if u[1] < settings.scale:
        matrix = (np.eye(3) if matrix is None else matrix) * zoom
    return SampleTransform(
        shift=tuple(int(s) for s in shift) if settings.crop else (0, 0, 0),
        flips=tuple(i for i in range(3) if settings.mirror and flip_u[i] < 0.5),
        matrix=matrix,
        displacement=displacement if u[2] < settings.elastic else None)


def context_margin(patch: int) -> int:
    """Voxels of context read around a patch that will be resampled."""
    return patch // 4 + int(math.ceil(3 * ELASTIC_SIGMA * patch))


def resample(image: np.ndarray, labels: np.ndarray, transform: SampleTransform, patch: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate/scale/deform a context block pair about its centre; returns the central
    ``patch``-cube of each (image linear, labels nearest-neighbour)."""
    import elasticdeform

    size = image.shape[0]
    margin = (size - patch) // 2
    centre = (size - 1) / 2.0
    matrix = np.eye(3) if transform.matrix is None else transform.matrix
    affine = np.hstack([matrix, (centre - matrix @ np.full(3, centre))[:, None]])
    displacement = transform.displacement
    if displacement is None:
        displacement = np.zeros((3,) + (ELASTIC_POINTS,) * 3)
    crop = [slice(margin, margin + patch)] * 3
    out_image, out_labels = elasticdeform.deform_grid(
        [np.ascontiguousarray(image, dtype=np.float32),
         np.ascontiguousarray(labels, dtype=np.float32)],
        displacement, order=[1, 0], mode=["mirror", "constant"], cval=[0.0, 0.0],
        crop=crop, affine=affine, prefilter=False)
    return out_image.astype(np.float32, copy=False), out_labels


def mirror(image: np.ndarray, labels: np.ndarray, axes: Sequence[int]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Flip both arrays along ``axes`` (contiguous copies)."""
    if axes:
        image = np.flip(image, axis=tuple(axes))
        labels = np.flip(labels, axis=tuple(axes))
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)
