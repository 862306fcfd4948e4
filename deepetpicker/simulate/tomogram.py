"""One simulated tomogram: a phantom of ice, particles and distractors, imaged as a tilt series
and reconstructed (:func:`simulate_tomogram`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.simulate.imaging import back_project, image_tilt_series, tilt_angles, wbp_weights
from deepetpicker.simulate.shapes import (
    add_box,
    particle_template,
    radial_box,
    random_rotations,
    resolve_classes,
    stamp_particle,
)

# Relative scattering potential of each material, with the ice as the unit.
ICE_DENSITY = 1.0
PROTEIN_CONTRAST = 0.4      # protein over ice (1.35 versus 0.94 g/cm^3)
LIPID_CONTRAST = 0.35       # lipid head groups over ice
GOLD_CONTRAST = 1.0         # colloidal gold: very dense


# ---------------------------------------------------------------------------------------------
# Phantom
# ---------------------------------------------------------------------------------------------
class _Placer:
    """Rejection sampling of non-overlapping spheres (a vesicle counts as its bounding sphere)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.centres = np.zeros((0, 3))  # x, y, z
        self.radii = np.zeros(0)

    def free(self, c: np.ndarray, r: float, gap: float = 0.0) -> bool:
        if not len(self.radii):
            return True
        d = np.linalg.norm(self.centres - c, axis=1)
        return not np.any(d < self.radii + r + gap)

    def place(self, r: float, low, high, gap: float = 0.0, tries: int = 400):
        """A free integer centre (x, y, z) with ``low <= centre <= high``, or None."""
        low = np.ceil(np.asarray(low, float) - 1e-9).astype(np.int64)
        high = np.floor(np.asarray(high, float) + 1e-9).astype(np.int64)
        if np.any(high < low):
            return None
        for _ in range(tries):
            c = self.rng.integers(low, high + 1).astype(np.float64)
            if self.free(c, r, gap):
                self.centres = np.vstack([self.centres, c])
                self.radii = np.append(self.radii, r)
                return c
        return None


def _default_count(shape, per_area: float) -> int:
    return max(1, int(round(shape[1] * shape[2] / per_area)))


def _build_phantom(shape, specs, n_particles, n_crowders, n_vesicles, n_gold, slab, rng):
    """Volumes of biological matter and gold, the particle picks and the distractors."""
    nz, ny, nx = shape
    z0, z1 = slab
    bio = np.zeros(shape, np.float32)
    gold = np.zeros(shape, np.float32)
    placer = _Placer(rng)
    info: dict = {"vesicles": [], "gold": [], "crowders": 0}

    # membrane vesicles: spheroids flattened to fit in the ice, two leaflets each; nothing
    # else is placed inside them
    half_ice = (z1 - z0) / 2.0
    for _ in range(n_vesicles):
        rz = rng.uniform(0.55, 0.85) * (half_ice - 3.0)
        big = rng.uniform(1.0, 1.8) * rz
        if rz < 5:
            break
        c = placer.place(big + 3, (-big / 2, -big / 2, z0 + rz + 3),
                         (nx - 1 + big / 2, ny - 1 + big / 2, z1 - rz - 3), gap=1.0)
        if c is None:
            continue

        def bilayer(r, big=big):
            return LIPID_CONTRAST * (np.exp(-(r - big - 1.3) ** 2 / 1.3)
                                     + np.exp(-(r - big + 1.3) ** 2 / 1.3))
        box = radial_box(big + 3, bilayer, stretch_z=big / rz)
        h = box.shape[0] // 2
        add_box(bio, box, [int(c[2]) - h, int(c[1]) - h, int(c[0]) - h])
        info["vesicles"].append([float(c[0]), float(c[1]), float(c[2]), round(big, 2),
                                 round(rz, 2)])

    # gold fiducials on the two ice surfaces
    for _ in range(n_gold):
        r = rng.uniform(2.5, 4.5)
        side = rng.integers(2)
        depth = round(r * rng.uniform(0.3, 1.0))
        zc = z0 + depth if side == 0 else z1 - depth
        c = placer.place(r, (0, 0, zc), (nx - 1, ny - 1, zc), gap=1.0)
        if c is None:
            continue
        box = radial_box(r, lambda d, r=r: GOLD_CONTRAST * np.clip(r - d + 0.5, 0.0, 1.0))
        h = box.shape[0] // 2
        add_box(gold, box, [int(c[2]) - h, int(c[1]) - h, int(c[0]) - h])
        info["gold"].append([float(c[0]), float(c[1]), float(c[2]), round(2 * r, 2)])

    # particles, largest class first so they find room
    cls_ids = np.arange(n_particles) % len(specs) + 1
    rng.shuffle(cls_ids)
    order = sorted(range(n_particles), key=lambda i: -specs[cls_ids[i] - 1].diameter)
    quats = random_rotations(rng, n_particles)
    centres = np.zeros((n_particles, 3))
    for i in order:
        spec = specs[cls_ids[i] - 1]
        r = spec.diameter / 2.0
        m = np.ceil(r / 2.0)
        c = placer.place(r, (m, m, z0 + r), (nx - 1 - m, ny - 1 - m, z1 - r))
        if c is None:
            raise DeepETPickerError(
                f"Could not place {n_particles} particles without overlap in a volume of "
                f"shape {tuple(shape)} with an ice slab of {z1 - z0:g} voxels; ask for fewer "
                f"particles (n_particles) or a larger shape.")
        centres[i] = c
        stamp_particle(bio, particle_template(spec.shape, spec.diameter), c[::-1], quats[i],
                       PROTEIN_CONTRAST)

    # crowders: small untargeted proteins (not picked)
    small = min(s.diameter for s in specs)
    for _ in range(n_crowders):
        d = rng.uniform(3.0, max(3.5, min(6.0, 0.7 * small)))
        c = placer.place(d / 2, (0, 0, z0 + d / 2), (nx - 1, ny - 1, z1 - d / 2), tries=50)
        if c is None:
            continue
        stamp_particle(bio, particle_template("globule", round(d, 1)), c[::-1],
                       random_rotations(rng, 1)[0], PROTEIN_CONTRAST)
        info["crowders"] += 1
    return bio, gold, cls_ids, centres, quats, info


def _ice_profile(nz: int, slab) -> np.ndarray:
    """Ice density along z: 1 inside the slab, 0 outside, with one-voxel soft surfaces."""
    z = np.arange(nz, dtype=np.float64)
    z0, z1 = slab
    prof = 0.5 * (np.tanh((z - z0 + 0.5) / 1.0) - np.tanh((z - z1 - 0.5) / 1.0))
    return (ICE_DENSITY * prof).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def simulate_tomogram(shape: Sequence[int] = (64, 256, 256), n_particles: Optional[int] = None,
                      classes: Union[int, Sequence[Any], None] = 3, seed: int = 0,
                      snr: float = 0.1, tilt_range: Sequence[float] = (-60.0, 60.0),
                      tilt_step: float = 3.0,
                      defocus_um: float = 4.0, voxel_size: float = 10.0,
                      ice_thickness: Optional[int] = None, n_crowders: Optional[int] = None,
                      n_vesicles: Optional[int] = None, n_gold: Optional[int] = None,
                      voltage_kv: float = 300.0, cs_mm: float = 2.7,
                      amplitude_contrast: float = 0.07, bfactor: float = 200.0,
                      keep_phantom: bool = False, name: str = ""
                      ) -> tuple[np.ndarray, Picks, dict[str, Any]]:
    """Simulate one tomogram; returns ``(volume, picks, info)``.

    ``volume``: (z, y, x) float32, zero mean and unit variance, dense matter dark.
    ``picks``: the particle centres (0-based voxels, class ids 1..K, no scores).
    ``info``: ``classes`` (id, name, shape, diameter), ``slab`` (first and last z of the ice),
    ``gold`` and ``vesicles`` (x, y, z and sizes of the distractors), ``orientations``
    (a unit quaternion w, x, y, z per pick), the imaging settings, and ``phantom`` (the
    specimen before imaging) when ``keep_phantom``.

    ``n_particles`` (default: one per 1100 voxels of slab area), ``n_crowders`` (small untargeted
    proteins), ``n_vesicles`` and ``n_gold`` scale with the area when left as None. ``snr`` is
    the variance of the biological matter's signal in the untilted image over the noise
    variance, per projection. ``ice_thickness`` defaults to 70 % of the volume's depth.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 16:
        raise DeepETPickerError(
            f"shape={shape}: give three sizes (z, y, x) of at least 16 voxels each.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DeepETPickerError(f"seed={seed!r}: give a whole number (the same seed gives the "
                                f"same tomogram).")
    if not snr > 0:
        raise DeepETPickerError(f"snr={snr}: the signal-to-noise ratio must be positive.")
    if not 0.5 <= defocus_um <= 20:
        raise DeepETPickerError(
            f"defocus_um={defocus_um}: give an underfocus between 0.5 and 20 micrometres.")
    if not voxel_size > 0:
        raise DeepETPickerError(f"voxel_size={voxel_size}: give a positive size in Angstrom.")
    specs = resolve_classes(classes)
    angles = tilt_angles(tilt_range, tilt_step)
    nz, ny, nx = shape
    biggest = max(s.diameter for s in specs)
    thick = int(round(0.7 * nz)) if ice_thickness is None else int(ice_thickness)
    if not biggest + 2 <= thick <= nz - 2:
        raise DeepETPickerError(
            f"ice_thickness={thick} voxels: it must hold the largest particle "
            f"({biggest:g} voxels, so >= {int(np.ceil(biggest + 2))}) and be at most the depth "
            f"minus 2 ({nz - 2}); use a deeper shape or smaller particles.")
    if n_particles is None:
        n_particles = _default_count(shape, 1100.0)
    if int(n_particles) < 0:
        raise DeepETPickerError(f"n_particles={n_particles}: give a count >= 0.")
    n_particles = int(n_particles)

    rng = np.random.default_rng(seed)
    z0 = int((nz - thick) // 2 + rng.integers(-(nz - thick) // 4, (nz - thick) // 4 + 1))
    slab = (z0, z0 + thick - 1)
    n_crowders = n_particles if n_crowders is None else int(n_crowders)
    n_vesicles = _default_count(shape, 30000.0) if n_vesicles is None else int(n_vesicles)
    n_gold = _default_count(shape, 9000.0) if n_gold is None else int(n_gold)

    bio, gold, cls_ids, centres, quats, extra = _build_phantom(
        shape, specs, n_particles, n_crowders, n_vesicles, n_gold, slab, rng)
    specimen = bio + gold + _ice_profile(nz, slab)[:, None, None]
    optics = dict(voltage_kv=voltage_kv, cs_mm=cs_mm, amplitude_contrast=amplitude_contrast,
                  bfactor=bfactor)
    images = image_tilt_series(specimen, gold, bio, angles, snr, defocus_um, voxel_size,
                               thick * voxel_size / 10.0, rng, optics)
    del bio, gold

    weights = wbp_weights(angles, nx)
    filtered = np.fft.irfft(np.fft.rfft(images, axis=2) * weights[:, None, :], n=nx, axis=2)
    volume = back_project(filtered.astype(np.float32), angles, nz)
    volume -= volume.mean()
    volume /= max(float(volume.std()), 1e-12)

    picks = Picks(cls_ids, centres, None, tomo_name=name, voxel_size=float(voxel_size))
    info = {
        "classes": [{"id": i + 1, **asdict(s)} for i, s in enumerate(specs)],
        "slab": [int(slab[0]), int(slab[1])],
        "orientations": quats,
        "tilt_angles": angles.tolist(),
        "snr": float(snr), "defocus_um": float(defocus_um), "voxel_size": float(voxel_size),
        "contrast": "negative (dense matter is dark)",
        "seed": int(seed),
        **extra,
    }
    if keep_phantom:
        info["phantom"] = specimen
    return volume.astype(np.float32), picks, info

