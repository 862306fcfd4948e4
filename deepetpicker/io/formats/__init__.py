"""Pick files of other programs: the one place that knows their conventions.

Inside DeepETPicker a pick is ``(class, x, y, z, score)`` in 0-based voxels of the tomogram
it was picked in (:class:`~deepetpicker.io.picks.Picks`). Every other convention is turned
into that one here, by the small named functions of :mod:`.conventions`, and nowhere
else. Every format stores ``x, y, z`` in that order (our arrays are ``(z, y, x)``; picks are
not).

The formats and their conventions (files, units, origin, what each needs) are listed once, in
:data:`deepetpicker.io.format_specs.FORMAT_SPECS`, which also gives the README's table of
formats. The reader and writer of each format live in that format's module, registered under
its name (:func:`.registry.reads`, :func:`.registry.writes`); importing this package imports
them all, so every format is registered before any file is read or written.

The modules, each importing only those above it:

* ``text``: reading the text of pick files;
* ``conventions``: coordinate conventions (1-based, Angstrom, centred, tilt-series pixels);
* ``names``: object names of classes, copick's name rule, RELION tomogram names
  (:class:`TomoNames`);
* ``geometry``: shapes, voxel sizes and binning per tomogram (:func:`relion4_binning`);
* ``registry``: the readers and writers by format name, :func:`detect_format`,
  :func:`read_any`, :func:`check_export`, :func:`write_format`;
* one module per family of formats: ``coords`` (DeepETPicker tables, EMAN2 box), ``relion``
  (RELION 3, 4 and 5 STAR files), ``dynamo`` (tables and table maps), ``copick`` (copick
  picks and the CryoET Data Portal's point annotations).

Scores travel in ``rlnAutopickFigureOfMerit`` (STAR), the ``cc`` column (Dynamo) and
``score`` (copick); EMAN2 box and Data Portal points have no score.
"""

# the format modules register their readers and writers when imported
from deepetpicker.io.formats import coords, copick, dynamo, relion  # noqa: F401
from deepetpicker.io.formats.conventions import (
    from_angstrom,
    from_centred_angstrom,
    from_one_based,
    from_tilt_series_pixels,
    to_angstrom,
    to_centred_angstrom,
    to_one_based,
    to_tilt_series_pixels,
    tomogram_centre,
)
from deepetpicker.io.formats.copick import COPICK_SESSION, COPICK_USER
from deepetpicker.io.formats.geometry import relion4_binning
from deepetpicker.io.formats.names import (
    NAMED_FORMATS,
    TomoNames,
    check_class_names,
    class_from_name,
    class_name,
    copick_name_problem,
    copick_safe_name,
    tomo_names,
)
from deepetpicker.io.formats.registry import (
    FORMAT_HELP,
    FORMATS,
    RELION_TOMO_FORMATS,
    check_export,
    detect_format,
    read_any,
    write_format,
)

__all__ = [
    "COPICK_SESSION", "COPICK_USER", "FORMATS", "FORMAT_HELP", "NAMED_FORMATS",
    "RELION_TOMO_FORMATS", "TomoNames", "check_class_names", "check_export", "class_from_name",
    "class_name", "copick_name_problem", "copick_safe_name", "detect_format", "from_angstrom",
    "from_centred_angstrom", "from_one_based", "from_tilt_series_pixels", "read_any",
    "relion4_binning", "to_angstrom", "to_centred_angstrom", "to_one_based",
    "to_tilt_series_pixels", "tomo_names", "tomogram_centre", "write_format",
]
