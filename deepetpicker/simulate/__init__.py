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

Modules: ``shapes`` (the particle species and their density templates), ``tomogram`` (the
phantom and :func:`simulate_tomogram`), ``imaging`` (CTF, projection, back-projection) and
``dataset`` (:func:`simulate_dataset`: tomograms, picks and a config on disk).
"""

from deepetpicker.simulate.dataset import (
    DEFAULT_DATASET,
    label_diameter_for,
    label_diameters_for,
    simulate_dataset,
)
from deepetpicker.simulate.imaging import (
    GOLD_ABSORPTION,
    INELASTIC_MFP_NM,
    absorption_transfer,
    back_project,
    ctf,
    electron_wavelength,
    project,
    tilt_angles,
    wbp_weights,
)
from deepetpicker.simulate.shapes import (
    BUILTIN_CLASSES,
    SHAPES,
    ParticleClass,
    particle_template,
    resolve_classes,
)
from deepetpicker.simulate.tomogram import (
    GOLD_CONTRAST,
    ICE_DENSITY,
    LIPID_CONTRAST,
    PROTEIN_CONTRAST,
    simulate_tomogram,
)

__all__ = [
    "BUILTIN_CLASSES", "DEFAULT_DATASET", "GOLD_ABSORPTION", "GOLD_CONTRAST", "ICE_DENSITY",
    "INELASTIC_MFP_NM", "LIPID_CONTRAST", "PROTEIN_CONTRAST", "SHAPES", "ParticleClass",
    "absorption_transfer", "back_project", "ctf", "electron_wavelength", "label_diameter_for",
    "label_diameters_for", "particle_template", "project", "resolve_classes", "simulate_dataset",
    "simulate_tomogram", "tilt_angles", "wbp_weights",
]
