"""Synthetic cryo-electron tomograms whose particles are known: for the demo, tests and benchmarks.

A tomogram is made the way a microscope and a reconstruction program make one:

1. **Phantom.** A slab of vitreous ice, thinner than the volume, holds particles of K classes
   (different sizes and shapes, random positions and random 3D orientations, never
   overlapping), small untargeted proteins ("crowders"), membrane vesicles and very dense gold
   fiducial beads. Only the particles are ground truth; everything else is a distractor.
2. **Tilt series.** Projections about the y axis (default -60..+60 degrees in 3 degree steps).
   Each image is the projected scattering potential seen through the contrast transfer
   function (CTF) of a defocused microscope, attenuated by the ice it crosses, plus Gaussian
   noise at the chosen signal-to-noise ratio.
3. **Reconstruction.** Weighted (ramp-filtered) back-projection. The missing wedge (particles
   stretched along z), CTF fringes and streaks around the gold come from these steps, not from
   a filter applied to the phantom.

Contrast convention: like real reconstructions, dense matter is **dark** (negative contrast):
protein and membranes are darker than the ice, gold beads are black with bright fringes. The
returned volume has zero mean and unit standard deviation (arbitrary units).

Geometry: for a tilt about y every x-z plane is an independent 2-D problem. Projecting at
angle theta is done as a shear (each z plane shifted along x by ``(z - zc) * tan(theta)``, then
summed over z), which in Fourier space along x is one batched matrix product over all y rows,
all z planes and all tilts at once; back-projection is its exact adjoint. The specimen is
periodic along x, as if the ice slab continued beyond the field of view, so there are no edge
artefacts from a finite specimen.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from scipy import ndimage

from deepetpicker.errors import DeepETPickerError, listed
from deepetpicker.io.picks import Picks
from deepetpicker.jobs import CancelToken, ProgressCallback

# Relative scattering potential of each material, with the ice as the unit.
ICE_DENSITY = 1.0
PROTEIN_CONTRAST = 0.4      # protein over ice (1.35 versus 0.94 g/cm^3)
LIPID_CONTRAST = 0.35       # lipid head groups over ice
GOLD_CONTRAST = 1.0         # colloidal gold: very dense
GOLD_ABSORPTION = 2.5       # amplitude contrast of gold, relative to its phase contrast
INELASTIC_MFP_NM = 350.0    # inelastic mean free path of 300 kV electrons in ice

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


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
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


def _add_box(volume: np.ndarray, box: np.ndarray, corner: Sequence[int]) -> None:
    """Add ``box`` to ``volume`` with its first voxel at ``corner`` (z, y, x), clipped."""
    dst, src = [], []
    for c, b, n in zip(corner, box.shape, volume.shape):
        lo, hi = max(c, 0), min(c + b, n)
        if hi <= lo:
            return
        dst.append(slice(lo, hi))
        src.append(slice(lo - c, hi - c))
    volume[tuple(dst)] += box[tuple(src)]


def _stamp_particle(volume: np.ndarray, template: np.ndarray, centre_zyx, quat, scale) -> None:
    """Add ``template`` rotated by ``quat`` at integer ``centre_zyx`` (z, y, x), times ``scale``."""
    half = template.shape[0] // 2
    ax = np.arange(-half, half + 1, dtype=np.float64)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    world = np.stack([x.ravel(), y.ravel(), z.ravel()])           # (3, M) x, y, z
    local = _quat_to_matrix(quat).T @ world + half                 # template frame, x y z
    vals = ndimage.map_coordinates(template, local[::-1], order=1, mode="constant", cval=0.0)
    box = (vals.reshape(template.shape) * scale).astype(np.float32)
    _add_box(volume, box, [int(c) - half for c in centre_zyx])


def _radial_box(radius_out: float, profile: Callable[[np.ndarray], np.ndarray],
                stretch_z: float = 1.0) -> np.ndarray:
    """A cube holding ``profile(r)`` of the (z-stretched) distance r from its centre."""
    half = int(np.ceil(radius_out)) + 2
    ax = np.arange(-half, half + 1, dtype=np.float64)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    r = np.sqrt(x * x + y * y + (z * stretch_z) ** 2)
    return profile(r).astype(np.float32)


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
        box = _radial_box(big + 3, bilayer, stretch_z=big / rz)
        h = box.shape[0] // 2
        _add_box(bio, box, [int(c[2]) - h, int(c[1]) - h, int(c[0]) - h])
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
        box = _radial_box(r, lambda d, r=r: GOLD_CONTRAST * np.clip(r - d + 0.5, 0.0, 1.0))
        h = box.shape[0] // 2
        _add_box(gold, box, [int(c[2]) - h, int(c[1]) - h, int(c[0]) - h])
        info["gold"].append([float(c[0]), float(c[1]), float(c[2]), round(2 * r, 2)])

    # particles, largest class first so they find room
    cls_ids = np.arange(n_particles) % len(specs) + 1
    rng.shuffle(cls_ids)
    order = sorted(range(n_particles), key=lambda i: -specs[cls_ids[i] - 1].diameter)
    quats = _random_rotations(rng, n_particles)
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
        _stamp_particle(bio, particle_template(spec.shape, spec.diameter), c[::-1], quats[i],
                        PROTEIN_CONTRAST)

    # crowders: small untargeted proteins (not picked)
    small = min(s.diameter for s in specs)
    for _ in range(n_crowders):
        d = rng.uniform(3.0, max(3.5, min(6.0, 0.7 * small)))
        c = placer.place(d / 2, (0, 0, z0 + d / 2), (nx - 1, ny - 1, z1 - d / 2), tries=50)
        if c is None:
            continue
        _stamp_particle(bio, particle_template("globule", round(d, 1)), c[::-1],
                        _random_rotations(rng, 1)[0], PROTEIN_CONTRAST)
        info["crowders"] += 1
    return bio, gold, cls_ids, centres, quats, info


def _ice_profile(nz: int, slab) -> np.ndarray:
    """Ice density along z: 1 inside the slab, 0 outside, with one-voxel soft surfaces."""
    z = np.arange(nz, dtype=np.float64)
    z0, z1 = slab
    prof = 0.5 * (np.tanh((z - z0 + 0.5) / 1.0) - np.tanh((z - z1 - 0.5) / 1.0))
    return (ICE_DENSITY * prof).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Imaging
# ---------------------------------------------------------------------------------------------
def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Angstrom for an acceleration voltage in kV."""
    v = voltage_kv * 1e3
    return 12.2643 / np.sqrt(v * (1.0 + 0.978466e-6 * v))


def _phase_shift(k, defocus_um, voltage_kv, cs_mm) -> np.ndarray:
    """The aberration phase chi(k) for frequencies ``k`` in 1/Angstrom (underfocus positive)."""
    lam = electron_wavelength(voltage_kv)
    k2 = np.asarray(k, dtype=np.float64) ** 2
    return np.pi * lam * defocus_um * 1e4 * k2 - 0.5 * np.pi * cs_mm * 1e7 * lam ** 3 * k2 * k2


def ctf(k: np.ndarray, defocus_um: float, voltage_kv: float = 300.0, cs_mm: float = 2.7,
        amplitude_contrast: float = 0.07, bfactor: float = 200.0) -> np.ndarray:
    """Contrast transfer at spatial frequencies ``k`` (1/Angstrom), underfocus positive.

    Positive at low frequency: the image of dense matter is darker than its surroundings by
    ``ctf * projected potential``. Includes a B-factor envelope ``exp(-B k^2 / 4)``.
    """
    chi = _phase_shift(k, defocus_um, voltage_kv, cs_mm)
    a = amplitude_contrast
    envelope = np.exp(-bfactor * np.asarray(k, dtype=np.float64) ** 2 / 4.0)
    return (np.sqrt(1 - a * a) * np.sin(chi) + a * np.cos(chi)) * envelope


def absorption_transfer(k: np.ndarray, bfactor: float = 200.0) -> np.ndarray:
    """Transfer of the electrons that heavy atoms (gold) scatter outside the objective aperture.

    They are missing from the image whatever the defocus, so only the envelope applies: gold
    beads print as solid dark discs rather than as the fringed outlines of phase contrast.
    """
    return np.exp(-bfactor * np.asarray(k, dtype=np.float64) ** 2 / 4.0)


def _shear_phases(angles_rad: np.ndarray, nz: int, nx: int) -> np.ndarray:
    """``exp(2 pi i kx (z - zc) tan theta)`` as (nkx, tilts, nz) complex64."""
    kx = np.fft.rfftfreq(nx)
    z = np.arange(nz) - (nz - 1) / 2.0
    arg = 2 * np.pi * kx[:, None, None] * np.tan(angles_rad)[None, :, None] * z[None, None, :]
    return np.exp(1j * arg).astype(np.complex64)


def project(volume: np.ndarray, angles_deg: Sequence[float]) -> np.ndarray:
    """Sheared projections about the y axis: (tilts, ny, nx) float32.

    Image ``t`` holds, at column u, the sum over z of ``volume[z, :, u + (z - zc) tan theta]``
    (periodic in x); it is the line integral along the tilted ray times ``cos theta`` and is
    sampled on the untilted x grid (detector coordinate ``u cos theta``).
    """
    vol = np.asarray(volume, dtype=np.float32)
    nz, ny, nx = vol.shape
    phases = _shear_phases(np.deg2rad(np.asarray(angles_deg, float)), nz, nx)
    fk = np.fft.rfft(vol, axis=2).astype(np.complex64).transpose(2, 1, 0)   # (k, y, z)
    g = np.matmul(fk, phases.transpose(0, 2, 1))                          # (k, y, tilts)
    return np.fft.irfft(g.transpose(2, 1, 0), n=nx, axis=2).astype(np.float32)


def back_project(images: np.ndarray, angles_deg: Sequence[float], nz: int) -> np.ndarray:
    """Adjoint of :func:`project`: smear each image back along its rays; (nz, ny, nx) float32."""
    imgs = np.asarray(images, dtype=np.float32)
    ny, nx = imgs.shape[1:]
    phases = _shear_phases(np.deg2rad(np.asarray(angles_deg, float)), nz, nx)
    qk = np.fft.rfft(imgs, axis=2).astype(np.complex64).transpose(2, 1, 0)  # (k, y, tilts)
    r = np.matmul(qk, np.conj(phases))                                    # (k, y, z)
    return np.fft.irfft(r.transpose(2, 1, 0), n=nx, axis=2).astype(np.float32)


def wbp_weights(angles_deg: Sequence[float], nx: int, cutoff: float = 0.35,
                falloff: float = 0.05) -> np.ndarray:
    """Back-projection weights along x for each tilt: (tilts, nx // 2 + 1).

    A ramp ``|k|`` in the sheared frame divided by ``cos^2 theta`` (the Jacobian of the shear),
    zero beyond the detector's Nyquist frequency (``|k| > 0.5 cos theta``), with a Gaussian
    roll-off above ``cutoff`` cycles/voxel to temper the noise, as reconstruction programs do.
    """
    cos = np.cos(np.deg2rad(np.asarray(angles_deg, float)))[:, None]
    k = np.fft.rfftfreq(nx)[None, :]
    ramp = np.maximum(k, 0.25 / nx) / cos ** 2
    kd = k / cos                                  # detector frequency
    roll = np.where(kd > cutoff, np.exp(-((kd - cutoff) ** 2) / (2 * falloff ** 2)), 1.0)
    return (ramp * roll * (kd <= 0.5)).astype(np.float32)


def _image_tilt_series(specimen: np.ndarray, absorber: np.ndarray, bio: np.ndarray, angles,
                       snr, defocus_um, voxel_size, ice_nm, rng, optics) -> np.ndarray:
    """Projections through the CTF, attenuated by the ice, with noise: (tilts, ny, nx).

    ``specimen`` is the whole scattering potential (phase contrast); ``absorber`` the part
    that also removes electrons (gold); ``bio`` the biological matter that sets the noise level.
    """
    ny, nx = specimen.shape[1:]
    cos = np.cos(np.deg2rad(angles))
    ky = np.fft.fftfreq(ny)[None, :, None]
    kx = np.fft.rfftfreq(nx)[None, None, :] / cos[:, None, None]   # detector frequencies
    kmag = np.sqrt(ky ** 2 + kx ** 2) / voxel_size
    spectrum = np.fft.rfft2(project(specimen, angles)) * -ctf(kmag, defocus_um, **optics)
    if np.any(absorber):
        amp = absorption_transfer(kmag, optics["bfactor"])
        spectrum -= GOLD_ABSORPTION * np.fft.rfft2(project(absorber, angles)) * amp
    images = np.fft.irfft2(spectrum, s=(ny, nx)).astype(np.float32)
    # thicker ice at high tilt scatters more electrons out of the image
    images *= np.exp(-ice_nm / (INELASTIC_MFP_NM * cos))[:, None, None].astype(np.float32)
    # noise level from the untilted image of the biological matter alone
    k0 = np.sqrt(ky[0] ** 2 + np.fft.rfftfreq(nx)[None, :] ** 2) / voxel_size
    ref = np.fft.irfft2(np.fft.rfft2(bio.sum(axis=0)) * ctf(k0, defocus_um, **optics),
                        s=(ny, nx))
    sigma = float(np.std(ref)) / np.sqrt(snr) if np.std(ref) > 0 else 1.0
    images += rng.normal(0.0, sigma, size=images.shape).astype(np.float32)
    return images


def tilt_angles(tilt_range: Sequence[float] = (-60.0, 60.0), tilt_step: float = 3.0) -> np.ndarray:
    """The tilt angles in degrees from ``tilt_range[0]`` to ``tilt_range[1]`` inclusive."""
    lo, hi = float(tilt_range[0]), float(tilt_range[1])
    if not (-89.0 <= lo < hi <= 89.0):
        raise DeepETPickerError(
            f"tilt_range={tuple(tilt_range)}: give (min, max) degrees with -89 <= min < max <= "
            f"89, e.g. (-60, 60).")
    if not 0.1 <= tilt_step <= hi - lo:
        raise DeepETPickerError(
            f"tilt_step={tilt_step}: give a step in degrees between 0.1 and the tilt range "
            f"({hi - lo:g}), e.g. 3.")
    n = int(np.floor((hi - lo) / tilt_step + 1e-6)) + 1
    return lo + tilt_step * np.arange(n)


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
    images = _image_tilt_series(specimen, gold, bio, angles, snr, defocus_um, voxel_size,
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


def _json_lines(data: dict) -> str:
    """JSON with one top-level key per line and one line per list item (readable, compact)."""
    rows = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n  ".join(json.dumps(v) for v in value)
            rows.append(f" {json.dumps(key)}: [\n  {items}\n ]")
        else:
            rows.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(rows) + "\n}\n"


#: The built-in sample data: what ``deepetpicker simulate`` and the demo make with no options.
DEFAULT_DATASET = {"n": 4, "shape": (64, 192, 192), "classes": 3}


def label_diameters_for(specs: Sequence[ParticleClass]) -> tuple[int, Optional[list[int]]]:
    """``(label_diameter, label_diameters)`` for these classes: one weak label of about 60 %
    of the smallest particle, and one per class only where a class is much wider than that
    (:func:`deepetpicker.config.label_diameters_if_needed`)."""
    from deepetpicker.config import label_diameters_if_needed

    return label_diameters_if_needed([s.diameter for s in specs])


def label_diameter_for(specs: Sequence[ParticleClass]) -> int:
    """One weak-label diameter for all these classes: odd, about 60 % of the smallest
    particle."""
    return label_diameters_for(specs)[0]


def simulate_dataset(out_dir: Union[str, Path] = "sample_data", n: Optional[int] = None,
                     shape: Optional[Sequence[int]] = None,
                     classes: Union[int, Sequence[Any], None] = None, seed: int = 0,
                     n_particles: Optional[int] = None, snr: float = 0.1,
                     defocus_um: Optional[float] = None, voxel_size: float = 10.0,
                     dset_name: str = "simulated",
                     progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelToken] = None,
                     reuse: bool = False, **options) -> Path:
    """Simulate ``n`` tomograms into ``out_dir`` and return the path of a preprocess config.

    A folder that already holds tomograms, pick files or any of the files to write is
    refused before anything is simulated (old and new data would mix). With ``reuse``, a
    folder holding exactly the dataset these arguments make (recorded in ``particles.json``,
    every file present) is kept as it is and its config returned.

    Writes ``raw/sim_<i>.mrc`` (with the voxel size) and ``raw/sim_<i>.coords`` (``class x y
    z``, 0-based voxel centres), ``particles.json`` (classes with names and diameters, and per
    tomogram its settings and distractors), and ``configs/<dset_name>.py``: a preprocess config
    whose ``base_path`` is ``out_dir``, with one occupancy diameter per class and the weak-label
    diameters of :func:`label_diameters_for` (one for all classes, and one per class only where
    a class is much wider than it). Left as None, ``n``, ``shape``
    and ``classes`` take :data:`DEFAULT_DATASET`; each tomogram's defocus is drawn from 3-5
    micrometres unless ``defocus_um`` is given. Other ``options`` go to
    :func:`simulate_tomogram`.
    Same arguments, same files.
    """
    from deepetpicker.config import PreprocessConfig, save_config
    from deepetpicker.io.atomic import write_text_atomic
    from deepetpicker.io.picks import write_picks
    from deepetpicker.io.tomogram import write_tomogram
    from deepetpicker.jobs import Reporter

    n = DEFAULT_DATASET["n"] if n is None else n
    shape = DEFAULT_DATASET["shape"] if shape is None else tuple(shape)
    classes = DEFAULT_DATASET["classes"] if classes is None else classes
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DeepETPickerError(f"n={n!r}: give the number of tomograms to simulate (1 or more).")
    from deepetpicker.io.dataset import CONFIGS_DIR
    from deepetpicker.io.outputs import check_output_folder
    from deepetpicker.io.tomogram import TOMOGRAM_SUFFIXES

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise DeepETPickerError(f"{out} is a file; give a folder for the simulated dataset.")
    specs = resolve_classes(classes)
    raw = out / "raw"
    recipe = {"n": int(n), "shape": [int(v) for v in shape], "seed": int(seed),
              "classes": [asdict(c) for c in specs], "n_particles": n_particles,
              "snr": float(snr), "defocus_um": defocus_um, "voxel_size": float(voxel_size),
              "dset_name": dset_name, "options": options}
    recipe = json.loads(json.dumps(recipe, default=str))
    names = [f"sim_{i:02d}" for i in range(int(n))]
    planned = [out / "particles.json", out / CONFIGS_DIR / f"{dset_name}.py",
               *(raw / f"{name}{suffix}" for name in names for suffix in (".mrc", ".coords"))]
    if reuse and all(p.is_file() for p in planned):
        try:
            recorded = json.loads((out / "particles.json").read_text()).get("recipe")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if recorded == recipe:
            Reporter(progress, cancel).log(f"{out} already holds this simulated dataset; "
                                           f"kept as it is")
            return planned[1]
    found = [p for p in planned if p.exists()]
    if raw.is_dir():
        found += [p for p in sorted(raw.iterdir()) if p.suffix.lower() in
                  (*TOMOGRAM_SUFFIXES, ".coords", ".txt", ".csv") and p not in found]
    if found:
        raise DeepETPickerError(
            f"{out} already holds a dataset ({listed(found, limit=4)}); simulating into it would "
            f"mix old and new tomograms. Choose an empty or new folder, or remove those files "
            f"first.")
    check_output_folder(out, "dataset folder", "OUT")
    report = Reporter(progress, cancel)
    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(int(n))]
    summary: dict = {
        "recipe": recipe, "voxel_size": float(voxel_size), "seed": int(seed),
        "contrast": "negative (dense matter is dark)",
        "classes": [{"id": i + 1, **asdict(s)} for i, s in enumerate(specs)],
        "tomograms": [],
    }
    for i in range(int(n)):
        name = f"sim_{i:02d}"
        report("simulate", i, int(n), item=name, message=f"simulating {name}")
        df = float(rng.uniform(3.0, 5.0)) if defocus_um is None else float(defocus_um)
        volume, picks, info = simulate_tomogram(
            shape, n_particles=n_particles, classes=specs, seed=seeds[i], snr=snr,
            defocus_um=df, voxel_size=voxel_size, name=name, **options)
        write_tomogram(raw / f"{name}.mrc", volume, voxel_size=voxel_size)
        write_picks(raw / f"{name}.coords", picks)
        summary["tomograms"].append({
            "name": name, "shape": list(volume.shape), "seed": seeds[i],
            "n_particles": len(picks), "counts": {str(k): v for k, v in
                                                  picks.counts(len(specs)).items()},
            "defocus_um": round(df, 3), "snr": float(snr), "slab": info["slab"],
            "gold": info["gold"], "vesicles": info["vesicles"],
        })
    write_text_atomic(out / "particles.json", _json_lines(summary))
    label_diameter, label_diameters = label_diameters_for(specs)
    cfg = PreprocessConfig(
        dset_name=dset_name, base_path=str(out), coord_path=str(raw), coord_format=".coords",
        tomo_path=str(raw), tomo_format=".mrc", num_cls=len(specs), label_type="gaussian",
        label_diameter=label_diameter, label_diameters=label_diameters,
        ocp_type="sphere",
        ocp_diameter=[int(round(s.diameter)) for s in specs], norm_type="standardization")
    path = save_config(cfg, planned[1])
    report("simulate", int(n), int(n), message=f"simulated {n} tomograms in {out}")
    return path
