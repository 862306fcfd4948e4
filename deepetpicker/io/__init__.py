"""Reading and writing tomograms, pick tables and the formats of other programs.

``tomogram``: MRC tomograms, memory-mapped, with clear errors for unusable files.
``picks``: the one pick table type (:class:`Picks`) and its ``.coords``/``.txt``/``.csv`` files.
``format_specs``: the registry of pick formats (names, suffixes, conventions, needs).
``formats``: other programs' pick files (EMAN2, RELION 3/4/5, Dynamo, copick, CryoET Data
Portal) and every conversion between coordinate conventions; a package with one module per
family of formats beside its conventions, naming rules, geometry and registry.
Converting whole sets of pick files is an operation above io: :mod:`deepetpicker.ops.convert`.
"""

from deepetpicker.io.formats import FORMATS, detect_format, read_any, write_format
from deepetpicker.io.picks import Picks, read_picks, write_picks
from deepetpicker.io.tomogram import (
    Tomogram,
    check_finite,
    create_tomogram,
    find_tomograms,
    load_tomogram,
    write_tomogram,
)

__all__ = [
    "FORMATS", "Picks", "Tomogram", "check_finite", "create_tomogram",
    "detect_format", "find_tomograms", "load_tomogram", "read_any", "read_picks",
    "write_format", "write_picks", "write_tomogram",
]
