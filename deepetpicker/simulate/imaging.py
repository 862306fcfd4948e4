"""The microscope and the reconstruction: the contrast transfer function, projections about the
y axis and their adjoint, weighted back-projection, a noisy tilt series and its tilt angles."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError

GOLD_ABSORPTION = 2.5       # amplitude contrast of gold, relative to its phase contrast
INELASTIC_MFP_NM = 350.0    # inelastic mean free path of 300 kV electrons in ice


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


def image_tilt_series(specimen: np.ndarray, absorber: np.ndarray, bio: np.ndarray,
                      angles: np.ndarray, snr: float, defocus_um: float, voxel_size: float,
                      ice_nm: float, rng: np.random.Generator, optics: dict) -> np.ndarray:
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

