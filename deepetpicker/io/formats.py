"""Pick files of other programs: the one place that knows their conventions.

Inside DeepETPicker a pick is ``(class, x, y, z, score)`` in 0-based voxels of the tomogram
it was picked in (:class:`~deepetpicker.io.picks.Picks`). Every other convention is turned
into that one here, by the small named functions in the "Conventions" section, and nowhere
else. Every format stores ``x, y, z`` in that order (our arrays are ``(z, y, x)``; picks are
not).

The formats and their conventions (files, units, origin, what each needs) are listed once, in
:data:`deepetpicker.io.format_specs.FORMAT_SPECS`, which also gives the README's table of
formats. The reader and writer of each format are here, registered under its name
(:func:`_reads`, :func:`_writes`).

Where each origin comes from (RELION's own source, 3dem/relion):

* RELION 3 (``star``): extraction windows the micrograph or tomogram at
  ``x0 = (long) rlnCoordinateX + FIRST_XMIPP_INDEX(size)`` with 0-based array indices
  (``src/preprocessing.cpp``, ``extractParticlesFromOneFrame``), so the coordinate is the
  0-based index of the box centre.
* RELION 4.0 (``relion4``): ``ParticleSet::getPosition`` adds 1 to rlnCoordinate
  (``src/jaz/tomography/particle_set.cpp``) because its internal tomogram frame is 1-based
  (``ImodImport`` subtracts 1 again, ``toImodOrigin3D``; ``relion_tomo_reconstruct_tomogram``
  puts voxel 0 at origin 1.0). rlnCoordinate is therefore 0-based, in pixels of the unbinned
  tilt series (``rlnTomoTiltSeriesPixelSize`` of the optics group, which
  ``relion_tomo_import_particles`` writes): a pick at voxel ``v`` of a tomogram binned ``B``
  times is ``v * B``. ``rlnImagePixelSize``, added by ``relion_tomo_subtomo``, is the pixel
  size of the extracted subtomograms, not the unit of the coordinates.
* RELION 5.0 (``relion5``): ``getPosition`` no longer adds 1 and rlnCenteredCoordinate*Angst
  is ``(pixel - size / 2) * rlnTomoTiltSeriesPixelSize`` (``getParticleCoordDecenteredPixel``;
  ``TomogramSet::loadTomogram`` sets the centre to ``size / 2``); reconstruction puts voxel 0
  at origin 0.0 and projection (``Tomogram::getProjectionMatrix``) starts from 0-based pixels.
  In the voxels of a binned tomogram that is ``(v - shape / 2) * voxel_size``.
  There is no RELION 4.1 release; the comment "no longer do this in relion-4.1" in
  ``getPosition`` refers to development that became 5.0.
* ``rlnClassNumber`` carries the picking class, as RELION's own autopicker writes the
  reference number there. It does not select half-sets (``rlnRandomSubset`` does; RELION 4's
  particle import fills it alternately) and it is no initial class assignment:
  Refine3D/Class3D only compare it with the new assignment and overwrite it after the first
  iteration. Only ``relion_reconstruct --class`` and particle subtraction read it.
* The tomogram name: RELION 5 writes tomogram ``<rlnTomoName>`` to ``rec_<rlnTomoName>.mrc``,
  so picks made on ``rec_TS_01.mrc`` need ``tomo_name="rec_{name}"`` to become
  ``rlnTomoName TS_01`` (see :class:`TomoNames`).

Dynamo is MATLAB and counts voxels from 1; copick's Dynamo reader takes the positions as
0-based (no shift), so a .tbl read by copick lands one voxel off. Of a Dynamo table's columns
1 is the tag, 10 the cc (score), 20 the tomogram index, 22 the class and 24-26 x y z.
EMAN2's boxer writes whole voxels and truncates what it reads to whole voxels; the box files
written here keep sub-voxel values so that they read back exactly. Scores travel in
``rlnAutopickFigureOfMerit`` (STAR), the ``cc`` column (Dynamo) and ``score`` (copick);
EMAN2 box and Data Portal points have no score.

Formats that hold one object per file (box, copick, ndjson) name the object
``class_names[k - 1]`` or, without a name, ``class-<k>``. copick refuses object names with
spaces, underscores, control characters or ``<>:"/\\|?*`` (``copick.util.escape``); such a
name is an error, not a file. Reading maps object names back to class ids: a name in
``class_names`` gets its id, ``class-<k>`` gets ``k``, and any other name gets the next free
id and is added to the list (pass a list to see the names found). RELION origin shifts
(``rlnOrigin*Angst``) and orientations are not applied: picks are positions.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path, write_text_atomic
from deepetpicker.io.format_specs import (FORMAT_SPECS, RELION_CENTRED_X, RELION_TOMO_NAME,
                                          describe_suffixes, format_names, format_spec,
                                          pick_file_suffixes, recognise_format)
from deepetpicker.io.picks import (Picks, check_in_bounds, format_number, parse_numbers,
                                   read_picks, write_picks)

PathLike = Union[str, os.PathLike]
Shape = tuple[int, int, int]
ShapeSpec = Union[None, Sequence[int], Sequence[Sequence[int]], Mapping[str, Sequence[int]]]
VoxelSpec = Union[None, float, Mapping[str, float]]
TomoNameSpec = Union[None, str, os.PathLike, Mapping[str, str], Sequence[str], "TomoNames"]

FORMATS = format_names()
FORMAT_HELP = {spec.name: spec.help for spec in FORMAT_SPECS}
COPICK_USER = "deepetpicker"
COPICK_SESSION = "0"  # copick's session id for picks made by a tool
NAMED_FORMATS = format_names(lambda spec: spec.one_object_per_file)
RELION_TOMO_FORMATS = format_names(lambda spec: spec.relion_tomo)

# STAR labels
_MICROGRAPH = "rlnMicrographName"
_TOMO = RELION_TOMO_NAME
_XYZ_PIXEL = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
_XYZ_CENTRED = (RELION_CENTRED_X, "rlnCenteredCoordinateYAngst", "rlnCenteredCoordinateZAngst")
_CLASS = "rlnClassNumber"
_SCORE = "rlnAutopickFigureOfMerit"
#: A pick's class confidence (its class's share of the class probabilities around it): the
#: column RELION's classifications use for how sure the assignment is.
_CLASS_CONFIDENCE = "rlnMaxValueProbDistribution"
_OPTICS_GROUP = "rlnOpticsGroup"
_OPTICS_NAME = "rlnOpticsGroupName"
_TS_PIXEL = "rlnTomoTiltSeriesPixelSize"  # what RELION 4 and 5 put in the optics table

# Dynamo table columns (1-based, as in the Dynamo table convention)
_TBL_COLUMNS = 35
_TBL_TAG, _TBL_ALIGNED, _TBL_CC, _TBL_TOMO, _TBL_CLASS = 1, 2, 10, 20, 22
_TBL_SHIFT = (4, 5, 6)
_TBL_XYZ = (24, 25, 26)
# The columns read back (others, e.g. a complex-valued daxis, are left alone).
_TBL_READ = (_TBL_CC, _TBL_TOMO, _TBL_CLASS) + _TBL_SHIFT + _TBL_XYZ

# copick's rule for object names, user ids and session ids (copick.util.escape.sanitize_name):
# these characters are replaced by '-', and leading/trailing '-' are stripped.
_COPICK_INVALID = re.compile(r'[<>:"/\\|?*\x00-\x1F\x7F\s_]')
# Characters that cannot be part of a file name here (box and ndjson object names).
_FILE_INVALID = re.compile(r"[/\\\x00-\x1F\x7F]")
# A pixel-size ratio within this relative distance of a whole number is that binning.
_BINNING_TOLERANCE = 1e-3


# --------------------------------------------------------------------------------------------
# Conventions: the only conversions between coordinate systems in the project
# --------------------------------------------------------------------------------------------
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


def class_name(cls_id: int, class_names: Optional[Sequence[str]] = None) -> str:
    """The object name of class ``cls_id`` in one-object-per-file formats."""
    if class_names and 1 <= cls_id <= len(class_names):
        return str(class_names[cls_id - 1])
    return f"class-{int(cls_id)}"


def class_from_name(name: str, class_names: Optional[Sequence[str]] = None) -> Optional[int]:
    """The class id for an object name written by :func:`class_name` (None if unknown)."""
    if class_names and name in class_names:
        return list(class_names).index(name) + 1
    match = re.fullmatch(r"class-(\d+)", name)
    return int(match.group(1)) if match and int(match.group(1)) >= 1 else None


# --------------------------------------------------------------------------------------------
# Object names
# --------------------------------------------------------------------------------------------
def copick_name_problem(name: str) -> Optional[str]:
    """Why copick would refuse ``name`` as a pickable object name (None when it is valid).

    copick's models check ``name == sanitize_name(name)``, where ``sanitize_name`` replaces
    ``<>:"/\\|?*``, control characters, whitespace and ``_`` by ``-`` and strips leading and
    trailing ``-`` (copick ``src/copick/util/escape.py``, ``PickableObject.validate_name``).
    """
    if not name:
        return "is empty"
    bad = sorted(set(_COPICK_INVALID.findall(name)))
    if bad:
        shown = ", ".join("space" if c == " " else repr(c) for c in bad)
        return f"contains {shown}"
    if name != name.strip("-"):
        return "starts or ends with '-'"
    return None


def copick_safe_name(name: str) -> str:
    """``name`` as copick's ``sanitize_name`` would clean it (invalid characters -> '-')."""
    return _COPICK_INVALID.sub("-", name).strip("-")


def check_class_names(class_names: Optional[Sequence[str]], fmt: Optional[str] = None) -> None:
    """Raise unless ``class_names`` (one per class id from 1) can name the objects of format
    ``fmt``: unique non-empty text always; usable in a file name for box, copick and ndjson;
    a valid copick object name for copick."""
    if not class_names:
        return
    if isinstance(class_names, str):
        raise DeepETPickerError(
            f"Class names must be a list with one name per class, not the text "
            f"{class_names!r}.")
    seen: dict[str, int] = {}
    for k, name in enumerate(class_names, start=1):
        if not isinstance(name, str) or not name.strip():
            raise DeepETPickerError(
                f"Class name {k} is {name!r}; give one non-empty name per class, e.g. "
                f"--class-names ribosome proteasome.")
        if name in seen:
            raise DeepETPickerError(
                f"Class names {seen[name]} and {k} are both {name!r}; each class needs its own "
                f"name.")
        seen[name] = k
        if fmt == "copick":
            problem = copick_name_problem(name)
            if problem:
                safe = copick_safe_name(name) or f"class-{k}"
                raise DeepETPickerError(
                    f"Class name {name!r} (class {k}) is not a valid copick object name: it "
                    f"{problem}. copick refuses spaces, underscores, control characters, "
                    f"<>:\"/\\|?* and a leading or trailing '-', so the file is not written. "
                    f"Rename the class, e.g. --class-names ... {safe!r} ...")
        elif fmt in NAMED_FORMATS and _FILE_INVALID.search(name):
            raise DeepETPickerError(
                f"Class name {name!r} (class {k}) holds a path separator or control character, "
                f"so it cannot be part of a {fmt} file name; rename the class.")


class _ClassIds:
    """Object names -> class ids while reading box, copick and ndjson files.

    ``names`` (the caller's list when one is given) holds the name of class ``k`` at
    ``k - 1``; slots of classes met only by number hold ``class-<k>``. A name not in the list
    takes the id its file gives when that slot is free, else the next id, and is added.
    """

    def __init__(self, names: Optional[Sequence[str]] = None) -> None:
        self.names: list = names if isinstance(names, list) else list(names or [])
        self.used: set[int] = set()

    def _pad(self, k: int) -> None:
        while len(self.names) < k:
            self.names.append(f"class-{len(self.names) + 1}")

    def _free(self, k: int) -> bool:
        return k > len(self.names) or (self.names[k - 1] == f"class-{k}" and k not in self.used)

    def id_for(self, name: Optional[str] = None, number: Optional[int] = None) -> int:
        if name and name in self.names:
            k = self.names.index(name) + 1
        elif name and class_from_name(name) is not None:
            k = class_from_name(name)
            self._pad(k)
        elif name:
            if number is not None and number >= 1 and self._free(number):
                k = number
                self._pad(k)
                self.names[k - 1] = name
            else:
                k = len(self.names) + 1
                while not self._free(k):
                    k += 1
                self._pad(k)
                self.names[k - 1] = name
        elif number is not None and number >= 1:
            k = number
            self._pad(k)
        else:
            k = 1
        self.used.add(k)
        return k


def _object_suffix(cls_id: int, class_names: Optional[Sequence[str]]) -> str:
    """``_class-<k>`` or ``_class-<k>-<name>``: the id and name of a box/ndjson file's object,
    unambiguous whatever the tomogram is called."""
    name = class_name(cls_id, class_names)
    default = f"class-{int(cls_id)}"
    return f"_{default}" if name == default else f"_{default}-{name}"


def _split_object_stem(stem: str, ids: _ClassIds,
                       tomo_names: Iterable[str] = ()) -> tuple[str, int, Optional[str]]:
    """``<tomo>_<object>`` file stem -> (tomogram, class id, object name or None).

    ``_class-<k>[-<name>]`` suffixes are recognised whatever the names; otherwise a known
    object name or a known tomogram name splits the stem; else it is all tomogram, class 1.
    """
    match = re.fullmatch(r"(.+)_class-(\d+)(?:-(.+))?", stem)
    if match and int(match.group(2)) >= 1:
        name = match.group(3)
        return match.group(1), ids.id_for(name, int(match.group(2))), name
    for name in sorted((n for n in ids.names if n), key=len, reverse=True):
        if stem.endswith("_" + name) and len(stem) > len(name) + 1:
            return stem[: -len(name) - 1], ids.id_for(name), name
    for tomo in sorted(set(tomo_names), key=len, reverse=True):
        if stem.startswith(tomo + "_") and len(stem) > len(tomo) + 1:
            name = stem[len(tomo) + 1:]
            return tomo, ids.id_for(name), name
    return stem, ids.id_for(None, 1), None


# --------------------------------------------------------------------------------------------
# Tomogram names in RELION 4/5 files
# --------------------------------------------------------------------------------------------
class TomoNames:
    """How RELION's ``rlnTomoName`` relates to DeepETPicker's tomogram names (file stems).

    * a template with ``{stem}`` gives rlnTomoName from our name: ``"TS_{stem}"`` writes
      tomogram ``01`` as ``TS_01``;
    * a template with ``{name}`` says what our tomograms are called given rlnTomoName:
      ``"rec_{name}"`` for RELION 5's own reconstructions ``rec_<rlnTomoName>.mrc``, so picks of
      ``rec_TS_01`` are written as ``TS_01``;
    * a mapping from our names to RELION names (``{"rec_TS_01": "TS_01"}``).

    Reading applies the same relation backwards, so a RELION file reads back under our names.
    """

    def __init__(self, template: Optional[str] = None,
                 mapping: Optional[Mapping[str, str]] = None, source: str = "") -> None:
        self.template, self.source = template, source
        self.mapping = dict(mapping or {})
        self.field = None
        if template is not None:
            fields = re.findall(r"\{([^{}]*)\}", template)
            if len(fields) != 1 or fields[0] not in ("stem", "name") \
                    or template.count("{") != 1 or template.count("}") != 1:
                raise DeepETPickerError(
                    f"Tomogram name template {template!r} must hold {{stem}} (our tomogram "
                    f"name, e.g. 'TS_{{stem}}') or {{name}} (rlnTomoName, e.g. 'rec_{{name}}' for "
                    f"RELION 5 tomograms rec_<rlnTomoName>.mrc) exactly once.")
            self.field = fields[0]
            head, tail = template.split("{" + self.field + "}")
            self._pattern = re.compile(re.escape(head) + "(.+)" + re.escape(tail))
        inverse: dict[str, str] = {}
        for stem, name in self.mapping.items():
            if name in inverse:
                raise DeepETPickerError(
                    f"{self._where()}Tomograms {inverse[name]!r} and {stem!r} are both mapped to "
                    f"rlnTomoName {name!r}; each tomogram needs its own name.")
            inverse[name] = stem
        self._inverse = inverse

    def _where(self) -> str:
        return f"{self.source}: " if self.source else ""

    def describe(self) -> str:
        if self.template is not None:
            return f"--tomo-name {self.template!r}"
        return f"the tomogram name mapping{' in ' + self.source if self.source else ''}"

    def relion(self, stem: str) -> str:
        """Our tomogram name -> rlnTomoName."""
        if self.field == "stem":
            return self.template.replace("{stem}", stem)
        if self.field == "name":
            match = self._pattern.fullmatch(stem)
            if not match:
                raise DeepETPickerError(
                    f"Tomogram '{stem}' does not match {self.describe()}, so its rlnTomoName is "
                    f"unknown. Use a template that fits all tomograms, or STEM=NAME pairs.")
            return match.group(1)
        if stem not in self.mapping:
            raise DeepETPickerError(
                f"Tomogram '{stem}' has no entry in {self.describe()} (it names "
                f"{', '.join(sorted(self.mapping)) or 'no tomogram'}). Add '{stem}=NAME'.")
        return self.mapping[stem]

    def stem(self, name: str, source: str = "") -> str:
        """rlnTomoName -> our tomogram name."""
        where = f"{source}: " if source else ""
        if self.field == "name":
            return self.template.replace("{name}", name)
        if self.field == "stem":
            match = self._pattern.fullmatch(name)
            if not match:
                raise DeepETPickerError(
                    f"{where}rlnTomoName '{name}' does not match {self.describe()}. Use a "
                    f"template that fits the file's names, or STEM=NAME pairs.")
            return match.group(1)
        if name not in self._inverse:
            raise DeepETPickerError(
                f"{where}rlnTomoName '{name}' is not among the names of {self.describe()} "
                f"({', '.join(sorted(self._inverse)) or 'none'}). Add 'STEM={name}'.")
        return self._inverse[name]


def tomo_names(spec: TomoNameSpec) -> Optional[TomoNames]:
    """A :class:`TomoNames` from a template (``'rec_{name}'``, ``'TS_{stem}'``), a mapping,
    ``STEM=NAME`` strings, or a text file of ``STEM NAME`` lines (``#`` comments)."""
    if spec is None or isinstance(spec, TomoNames):
        return spec
    if isinstance(spec, Mapping):
        return TomoNames(mapping={str(k): str(v) for k, v in spec.items()})
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    if not items:
        return None
    if len(items) == 1 and "{" in str(items[0]):
        return TomoNames(template=str(items[0]))
    if all("=" in str(item) for item in items):
        pairs = {}
        for item in items:
            stem, name = (part.strip() for part in str(item).split("=", 1))
            if not stem or not name:
                raise DeepETPickerError(
                    f"Tomogram name pair {item!r}: expected STEM=NAME, e.g. rec_TS_01=TS_01.")
            pairs[stem] = name
        return TomoNames(mapping=pairs)
    if len(items) == 1 and Path(items[0]).is_file():
        return TomoNames(mapping=_read_name_map(Path(items[0])), source=str(items[0]))
    raise DeepETPickerError(
        f"Tomogram names {' '.join(map(str, items))!r}: give a template with {{stem}} or "
        f"{{name}} (e.g. 'rec_{{name}}'), STEM=NAME pairs, or a file of 'STEM NAME' lines.")


def _read_name_map(path: Path) -> dict[str, str]:
    mapping = {}
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        tokens = text.split("=", 1) if "=" in text else text.split()
        tokens = [t.strip() for t in tokens]
        if len(tokens) != 2 or not all(tokens):
            raise DeepETPickerError(
                f"{path}, line {lineno}: expected 'STEM NAME' (our tomogram name, then its "
                f"rlnTomoName), got {line.strip()!r}.")
        mapping[tokens[0]] = tokens[1]
    if not mapping:
        raise DeepETPickerError(f"{path} maps no tomogram names; write one 'STEM NAME' per line.")
    return mapping


# --------------------------------------------------------------------------------------------
# Shapes, voxel sizes and pixel sizes per tomogram
# --------------------------------------------------------------------------------------------
@dataclass
class _Geometry:
    """Where shapes and voxel sizes come from: one value for all tomograms, a list in table
    order, or a mapping from tomogram name; plus the RELION options and the tomograms given
    (name -> path, for messages)."""

    shapes: ShapeSpec = None
    voxel_size: VoxelSpec = None
    binning: Optional[float] = None
    ts_pixel: Optional[float] = None
    names: Optional[TomoNames] = None
    tomograms: dict = field(default_factory=dict)

    def shape(self, name: str, index: int = 0) -> Optional[Shape]:
        spec = self.shapes
        if spec is None:
            return None
        if isinstance(spec, Mapping):
            value = spec.get(name)
        elif len(spec) == 3 and all(np.isscalar(v) for v in spec):
            value = spec
        elif len(spec) == 1:
            value = spec[0]
        else:
            value = spec[index] if index < len(spec) else None
        if value is None:
            return None
        value = tuple(int(v) for v in value)
        if len(value) != 3 or min(value) < 1:
            raise DeepETPickerError(
                f"Tomogram shape {value} for '{name}' is not (z, y, x) with positive sizes.")
        return value  # type: ignore[return-value]

    def voxel(self, name: str, fallback: Optional[float] = None) -> Optional[float]:
        spec = self.voxel_size
        value = spec.get(name) if isinstance(spec, Mapping) else spec
        if value is None:
            value = fallback
        if value is not None and not (np.isfinite(value) and value > 0):
            raise DeepETPickerError(
                f"Voxel size {value!r} for '{name}' is not a positive number of Angstrom.")
        return None if value is None else float(value)

    def known_names(self) -> set[str]:
        """Tomogram names the shapes, voxel sizes or tomograms are given for."""
        names = set(self.tomograms)
        for spec in (self.shapes, self.voxel_size):
            if isinstance(spec, Mapping):
                names |= set(spec)
        return names

    def tomogram_hint(self, name: str) -> str:
        """Why no tomogram of ``name`` was found among those given with --tomogram."""
        if not self.tomograms:
            return ""
        given = ", ".join(f"{stem} ({path})" for stem, path in sorted(self.tomograms.items()))
        return (f" No tomogram given with --tomogram is named '{name}' (given: {given}); a "
                f"tomogram matches when its file name without extension is the picks' "
                f"tomogram name.")


_POSITIVE_HINTS = {
    "Binning": "give the tilt-series pixels per tomogram voxel, e.g. --binning 4",
    "Tilt-series pixel size": "give the Angstrom per pixel of the unbinned tilt series, e.g. "
                              "--tilt-series-pixel-size 1.35",
}


def _positive(value, what: str) -> Optional[float]:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (np.isfinite(number) and number > 0):
        raise DeepETPickerError(
            f"{what} {value!r} is not a positive number; {_POSITIVE_HINTS[what]}.")
    return number


def _require_voxel(fmt: str, name: str, voxel: Optional[float], source: str = "",
                   geometry: Optional[_Geometry] = None) -> float:
    if voxel is None:
        where = f"{source}: " if source else ""
        hint = geometry.tomogram_hint(name) if geometry else ""
        raise DeepETPickerError(
            f"{where}the {fmt} format stores coordinates in Angstrom, so the voxel size of "
            f"tomogram '{name}' is needed. Give it with --voxel-size A (Angstrom per voxel) or "
            f"point --tomogram at the tomogram so it is read from the MRC header"
            f"{' (or give --binning with the tilt-series pixel size)' if fmt == 'relion5' else ''}"
            f".{hint}")
    return voxel


def _require_shape(name: str, shape: Optional[Shape], source: str = "",
                   geometry: Optional[_Geometry] = None) -> Shape:
    if shape is None:
        where = f"{source}: " if source else ""
        hint = geometry.tomogram_hint(name) if geometry else ""
        raise DeepETPickerError(
            f"{where}RELION 5 coordinates are Angstrom from the tomogram centre, so the shape "
            f"of tomogram '{name}' is needed. Give it with --shape Z Y X or point --tomogram "
            f"at the tomogram.{hint}")
    return shape


def relion4_binning(name: str, voxel: Optional[float], ts_pixel: Optional[float],
                    binning: Optional[float] = None,
                    source: str = "") -> tuple[float, Optional[float], Optional[float]]:
    """``(binning, voxel size, tilt-series pixel size)`` of tomogram ``name`` for RELION 4.

    RELION 4 coordinates are pixels of the unbinned tilt series (``voxel * binning``). An
    explicit ``binning`` is used, and must agree with the two pixel sizes when both are
    known; otherwise the binning is ``voxel / ts_pixel`` when that is a whole number. Pixel
    sizes that are both known but give no whole binning are refused: nothing is guessed.
    Without a tilt-series pixel size the binning is 1 (the tomogram is the tilt series'
    size) and the tilt-series pixel size is the voxel size.
    """
    where = f"{source}: " if source else ""
    if binning is not None:
        if voxel is not None and ts_pixel is not None \
                and not math.isclose(voxel, ts_pixel * binning, rel_tol=_BINNING_TOLERANCE):
            raise DeepETPickerError(
                f"{where}tomogram '{name}': voxel size {voxel:g} A is not binning {binning:g} x "
                f"tilt-series pixel size {ts_pixel:g} A (= {ts_pixel * binning:g} A). The pixel "
                f"sizes disagree: check --binning, --voxel-size (or the tomogram header) and "
                f"--tilt-series-pixel-size (or the file's {_TS_PIXEL}).")
        if voxel is None and ts_pixel is not None:
            voxel = ts_pixel * binning
        if ts_pixel is None and voxel is not None:
            ts_pixel = voxel / binning
        return float(binning), voxel, ts_pixel
    if voxel is not None and ts_pixel is not None:
        ratio = voxel / ts_pixel
        whole = round(ratio)
        if whole < 1 or abs(ratio - whole) > _BINNING_TOLERANCE * ratio:
            raise DeepETPickerError(
                f"{where}tomogram '{name}': voxel size {voxel:g} A and tilt-series pixel size "
                f"{ts_pixel:g} A give no whole binning (ratio {ratio:.4g}), so the RELION 4 "
                f"coordinates cannot be scaled without guessing. Say which with --binning B "
                f"(tilt-series pixels per tomogram voxel), or correct --voxel-size / "
                f"--tilt-series-pixel-size.")
        return float(whole), voxel, ts_pixel
    if ts_pixel is not None:
        return 1.0, ts_pixel, ts_pixel
    return 1.0, voxel, voxel


# --------------------------------------------------------------------------------------------
# The reader and writer of each format
# --------------------------------------------------------------------------------------------
#: format name -> reader(path, geometry, class ids, num_cls) -> one table per tomogram; the
#: tables' classes and bounds are checked by read_any
_READERS: dict[str, Callable[..., list[Picks]]] = {}
#: format name -> writer(tables, out_dir, geometry, class_names) -> the files written
_WRITERS: dict[str, Callable[..., list[Path]]] = {}


def _reads(*names: str) -> Callable:
    """Register the decorated function as the reader of the formats ``names``."""
    def register(function: Callable) -> Callable:
        for name in names:
            _READERS[format_spec(name).name] = function
        return function
    return register


def _writes(name: str) -> Callable:
    """Register the decorated function as the writer of format ``name``."""
    def register(function: Callable) -> Callable:
        _WRITERS[format_spec(name).name] = function
        return function
    return register


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def detect_format(path: PathLike) -> str:
    """The format of a pick file, from its extension (and the labels of a STAR file)."""
    path = Path(path)
    spec = recognise_format(path.suffix, lambda: _read_text(path))
    if spec is None:
        raise DeepETPickerError(
            f"Cannot tell the format of {path} from its extension {path.suffix!r}. Pick files "
            f"are {describe_suffixes()}.")
    return spec.name


def read_any(path: PathLike, shape: ShapeSpec = None, voxel_size: VoxelSpec = None,
             num_cls: Optional[int] = None, class_names: Optional[Sequence[str]] = None, *,
             binning: Optional[float] = None, tilt_series_pixel_size: Optional[float] = None,
             tomo_name: TomoNameSpec = None,
             tomograms: Optional[Mapping[str, PathLike]] = None) -> list[Picks]:
    """Read a pick file of any supported format as one table per tomogram.

    ``shape`` is a (z, y, x) shape for every tomogram or a mapping from tomogram name; when
    known, picks outside the tomogram are an error, and RELION 5 files need it. ``voxel_size``
    (Angstrom, or a mapping from tomogram name) is required by copick files without a voxel
    spacing and by RELION 5, and is attached to the tables.

    ``class_names`` maps object names (box, copick, ndjson) to class ids; other names get the
    next free ids, and a list passed here is extended with them. RELION 4 coordinates are
    divided by the binning: ``binning``, or the tomogram's voxel size over the tilt-series
    pixel size (``tilt_series_pixel_size`` or the file's optics table), see
    :func:`relion4_binning`. ``tomo_name`` (see :func:`tomo_names`) turns RELION 4/5
    rlnTomoName into our tomogram names. ``tomograms`` (name -> path) only improves messages.
    Each table's ``meta`` holds ``format`` and ``source`` (and ``object``, ``binning``,
    ``tilt_series_pixel_size`` where the format has them).
    """
    path = Path(path)
    if not path.exists():
        raise DeepETPickerError(f"Pick file not found: {path}")
    if path.is_dir():
        raise DeepETPickerError(f"{path} is a folder; give the pick files inside it.")
    fmt = detect_format(path)
    geometry = _Geometry(shape, voxel_size, _positive(binning, "Binning"),
                         _positive(tilt_series_pixel_size, "Tilt-series pixel size"),
                         tomo_names(tomo_name), {k: str(v) for k, v in (tomograms or {}).items()})
    ids = class_names if isinstance(class_names, _ClassIds) else _ClassIds(class_names)
    tables = _READERS[fmt](path, geometry, ids, num_cls)
    for table in tables:
        _check_table(path, table, geometry.shape(table.tomo_name), num_cls)
        table.meta.update(format=fmt, source=str(path))
    return tables


def _check_table(path: Path, table: Picks, shape: Optional[Shape],
                 num_cls: Optional[int]) -> None:
    if num_cls is not None and len(table) and table.classes.max() > num_cls:
        row = int(np.argmax(table.classes > num_cls)) + 1
        raise DeepETPickerError(
            f"{path}, pick {row} of tomogram '{table.tomo_name}': class "
            f"{int(table.classes[row - 1])} but the dataset has {num_cls} class(es).")
    if shape is not None:
        check_in_bounds(table.xyz, shape, f"{path} (tomogram '{table.tomo_name}')")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeepETPickerError(
            f"{path} is not a text file (byte {exc.start} is not UTF-8). Check that it is the "
            f"pick file and not a tomogram or an archive.") from exc


def _numbers(path: Path, lineno: int, tokens: Sequence[str], what: str,
             columns: Optional[Sequence[int]] = None) -> list[float]:
    """Parse ``tokens`` (1-based column numbers ``columns``) as finite floats."""
    numbers = columns or range(1, len(tokens) + 1)
    return parse_numbers(path, lineno, tokens, [f"{what} column {i}" for i in numbers])


@_reads("coords")
def _read_coords(path: Path, geometry: _Geometry, ids: _ClassIds,
                 num_cls: Optional[int]) -> list[Picks]:
    name = path.stem
    return [read_picks(path, shape=geometry.shape(name), num_cls=num_cls,
                       voxel_size=geometry.voxel(name))]


@_reads("box")
def _read_box(path: Path, geometry: _Geometry, ids: _ClassIds,
              num_cls: Optional[int]) -> list[Picks]:
    rows = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) != 3:
            hint = (" A 4-column .box is a 2-D EMAN box (x y width height) of a micrograph, "
                    "not a tomogram." if len(tokens) == 4 else "")
            raise DeepETPickerError(
                f"{path}, line {lineno}: {len(tokens)} columns; an EMAN2 3-D box file has 3 "
                f"(x y z particle centres).{hint}")
        rows.append(_numbers(path, lineno, tokens, "box"))
    tomo, cls, name = _split_object_stem(path.stem, ids, geometry.known_names())
    xyz = np.array(rows, dtype=np.float64).reshape(-1, 3)
    meta = {"object": name} if name else {}
    return [Picks(np.full(len(xyz), cls), xyz, None, tomo, geometry.voxel(tomo), meta)]


def _star_blocks(path: Path) -> dict:
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True,
                               parse_as_string=[_TOMO, _MICROGRAPH, _OPTICS_NAME])
    except Exception as exc:  # the parser raises many types on malformed input
        raise DeepETPickerError(f"{path} is not a readable STAR file ({exc}).") from exc
    return blocks


def _numeric_column(path: Path, block: str, df, label: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(df[label], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.nonzero(~np.isfinite(values))[0]
    if len(bad):
        row = int(bad[0])
        cell = df[label].iloc[row]
        problem = ("is missing (the row is short of values)" if pd.isna(cell)
                   else f"is '{cell}', not a finite number")
        raise DeepETPickerError(f"{path}, block data_{block}, row {row + 1}: {label} {problem}.")
    return values


def _optics_pixel_sizes(path: Path, blocks: dict, df) -> Optional[np.ndarray]:
    """rlnTomoTiltSeriesPixelSize of each particle row from the optics table (None without)."""
    optics = blocks.get("optics")
    if optics is None or not hasattr(optics, "columns") or _TS_PIXEL not in optics.columns:
        return None
    sizes = _numeric_column(path, "optics", optics, _TS_PIXEL)
    if np.any(sizes <= 0):
        raise DeepETPickerError(
            f"{path}, block data_optics: {_TS_PIXEL} {sizes[sizes <= 0][0]:g} is not a positive "
            f"pixel size in Angstrom.")
    if _OPTICS_GROUP in optics.columns and _OPTICS_GROUP in df.columns:
        groups = dict(zip(_numeric_column(path, "optics", optics, _OPTICS_GROUP), sizes))
        rows = _numeric_column(path, "particles", df, _OPTICS_GROUP)
        missing = sorted(set(rows) - set(groups))
        if missing:
            raise DeepETPickerError(
                f"{path}: particles of {_OPTICS_GROUP} {missing[0]:g} but data_optics has no "
                f"such group (it has {', '.join(f'{g:g}' for g in sorted(groups))}).")
        return np.array([groups[g] for g in rows])
    if len(sizes) == 1:
        return np.full(len(df), sizes[0])
    raise DeepETPickerError(
        f"{path}: data_optics has {len(sizes)} groups but the particles have no "
        f"{_OPTICS_GROUP} column, so their tilt-series pixel size is unknown.")


def _one_pixel_size(path: Path, name: str, sizes: Optional[np.ndarray],
                    given: Optional[float]) -> Optional[float]:
    """The tilt-series pixel size of one tomogram's rows: the file's and/or the given one."""
    found = None
    if sizes is not None and len(sizes):
        values = np.unique(np.round(sizes, 6))
        if len(values) > 1:
            raise DeepETPickerError(
                f"{path}: the particles of tomogram '{name}' lie in optics groups with different "
                f"{_TS_PIXEL} ({', '.join(f'{v:g}' for v in values)} A).")
        found = float(sizes[0])
    if given is not None and found is not None \
            and not math.isclose(given, found, rel_tol=_BINNING_TOLERANCE):
        raise DeepETPickerError(
            f"{path}: --tilt-series-pixel-size {given:g} A disagrees with the file's {_TS_PIXEL} "
            f"{found:g} A for tomogram '{name}'. Leave the option out to use the file's value.")
    return given if given is not None else found


@_reads("star", "relion4", "relion5")
def _read_star(path: Path, geometry: _Geometry, ids: _ClassIds,
               num_cls: Optional[int]) -> list[Picks]:
    blocks = _star_blocks(path)
    found = None
    for block, df in blocks.items():
        if not hasattr(df, "columns"):
            continue
        if all(c in df.columns for c in _XYZ_CENTRED) or all(c in df.columns for c in _XYZ_PIXEL):
            found = (block, df)
            break
    if found is None:
        raise DeepETPickerError(
            f"{path} has no data block with particle coordinates: expected the labels "
            f"{', '.join(_XYZ_PIXEL)} (RELION 3/4) or {', '.join(_XYZ_CENTRED)} (RELION 5).")
    block, df = found
    centred = all(c in df.columns for c in _XYZ_CENTRED)
    labels = _XYZ_CENTRED if centred else _XYZ_PIXEL
    coords = np.column_stack([_numeric_column(path, block, df, c) for c in labels])
    tomo_labels = _TOMO in df.columns
    if tomo_labels:
        relion_names = df[_TOMO].astype(str).to_numpy()
        if geometry.names is not None:
            mapped = {n: geometry.names.stem(n, str(path)) for n in dict.fromkeys(relion_names)}
            names = np.array([mapped[n] for n in relion_names])
        else:
            names = relion_names
    elif _MICROGRAPH in df.columns:
        names = np.array([Path(str(v)).stem for v in df[_MICROGRAPH]])
    else:
        names = np.full(len(df), path.stem)
    classes = np.ones(len(df))
    if _CLASS in df.columns:
        classes = _numeric_column(path, block, df, _CLASS)
        bad = np.nonzero((classes < 1) | (classes != np.round(classes)))[0]
        if len(bad):
            raise DeepETPickerError(
                f"{path}, block data_{block}, row {int(bad[0]) + 1}: {_CLASS} is "
                f"{df[_CLASS].iloc[int(bad[0])]}; class ids are whole numbers from 1.")
    scores = _numeric_column(path, block, df, _SCORE) if _SCORE in df.columns else None
    pixel_sizes = _optics_pixel_sizes(path, blocks, df) if tomo_labels else None
    tables = []
    for index, name in enumerate(dict.fromkeys(names)):
        rows = names == name
        voxel = geometry.voxel(name)
        xyz = coords[rows]
        meta: dict = {}
        if tomo_labels:
            ts = _one_pixel_size(path, name, None if pixel_sizes is None
                                 else pixel_sizes[rows], geometry.ts_pixel)
            if centred:
                if voxel is None and ts is not None and geometry.binning is not None:
                    voxel = ts * geometry.binning
                if ts is not None and voxel is not None and geometry.binning is not None:
                    relion4_binning(name, voxel, ts, geometry.binning, str(path))  # agree?
                meta["tilt_series_pixel_size"] = ts
            else:
                factor, voxel, ts = relion4_binning(name, voxel, ts, geometry.binning,
                                                    str(path))
                xyz = from_tilt_series_pixels(xyz, factor)
                meta.update(binning=factor, tilt_series_pixel_size=ts)
        if centred:
            shape = _require_shape(name, geometry.shape(name, index), str(path), geometry)
            voxel = _require_voxel("relion5", name, voxel, str(path), geometry)
            xyz = from_centred_angstrom(xyz, shape, voxel)
        tables.append(Picks(classes[rows], xyz, None if scores is None else scores[rows],
                            str(name), voxel, meta))
    return tables


@_reads("tbl")
def _read_tbl(path: Path, geometry: _Geometry, ids: _ClassIds,
              num_cls: Optional[int]) -> list[Picks]:
    rows = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < _TBL_XYZ[-1]:
            raise DeepETPickerError(
                f"{path}, line {lineno}: {len(tokens)} columns; a Dynamo table row has at least "
                f"{_TBL_XYZ[-1]} (x y z are columns 24-26).")
        rows.append(_numbers(path, lineno, [tokens[c - 1] for c in _TBL_READ], "table",
                             _TBL_READ))
    table = np.array(rows, dtype=np.float64).reshape(-1, len(_TBL_READ))

    def col(number: int) -> np.ndarray:
        return table[:, _TBL_READ.index(number)]

    xyz = from_one_based(np.column_stack([col(c) + col(s) for c, s in zip(_TBL_XYZ, _TBL_SHIFT)]))
    classes = np.where(col(_TBL_CLASS) >= 1, np.rint(col(_TBL_CLASS)), 1)
    cc = col(_TBL_CC)
    scores = cc if np.any(cc != 0) else None
    tomo_ids = np.rint(col(_TBL_TOMO)).astype(int)
    names = _read_table_map(path.with_suffix(".doc"))
    unique = list(dict.fromkeys(tomo_ids.tolist()))
    tables = []
    for tomo_id in unique:
        rows_of = tomo_ids == tomo_id
        if tomo_id in names:
            name = names[tomo_id]
        elif len(unique) == 1:
            name = path.stem
        else:
            name = f"{path.stem}_tomo{tomo_id}"
        tables.append(Picks(classes[rows_of], xyz[rows_of],
                            None if scores is None else scores[rows_of], name,
                            geometry.voxel(name)))
    return tables


def _read_table_map(path: Path) -> dict[int, str]:
    """Dynamo table map: ``index path`` per line -> {index: tomogram name}."""
    if not path.exists():
        return {}
    names = {}
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        tokens = line.split(maxsplit=1)
        if not tokens:
            continue
        if len(tokens) != 2 or not tokens[0].lstrip("-").isdigit():
            raise DeepETPickerError(
                f"{path}, line {lineno}: expected 'index tomogram_path' (a Dynamo table map), "
                f"got {line.strip()!r}.")
        names[int(tokens[0])] = Path(tokens[1].strip()).stem
    return names


def _load_json(path: Path, text: str, lineno: Optional[int] = None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {lineno}" if lineno is not None else f"line {exc.lineno}"
        raise DeepETPickerError(f"{path}, {where}: not valid JSON ({exc.msg}).") from None


def _location(path: Path, where: str, point) -> list[float]:
    location = point.get("location") if isinstance(point, dict) else None
    if not isinstance(location, dict):
        raise DeepETPickerError(f"{path}, {where}: no 'location' object with x, y, z.")
    values = []
    for key in ("x", "y", "z"):
        value = location.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not np.isfinite(value):
            raise DeepETPickerError(
                f"{path}, {where}: location.{key} is {value!r}, not a number.")
        values.append(float(value))
    return values


@_reads("copick")
def _read_copick(path: Path, geometry: _Geometry, ids: _ClassIds,
                 num_cls: Optional[int]) -> list[Picks]:
    data = _load_json(path, _read_text(path))
    if not isinstance(data, dict) or "points" not in data:
        raise DeepETPickerError(
            f"{path} is not a copick picks file: expected a JSON object with 'points' (and "
            f"pickable_object_name, user_id, session_id, run_name, voxel_spacing).")
    unit = str(data.get("unit", "angstrom")).lower()
    if unit != "angstrom":
        raise DeepETPickerError(
            f"{path}: field 'unit' is {data.get('unit')!r}; only Angstrom locations are "
            f"supported.")
    name = str(data.get("run_name") or path.stem)
    file_voxel = data.get("voxel_spacing")
    voxel = _require_voxel("copick", name, geometry.voxel(name, file_voxel), str(path),
                           geometry)
    points = data["points"] or []
    if not isinstance(points, list):
        raise DeepETPickerError(f"{path}: field 'points' is not a list.")
    locations, scores = [], []
    for i, point in enumerate(points):
        where = f"points[{i}]"
        locations.append(_location(path, where, point))
        score = point.get("score", 1.0)
        if score is None:
            score = 1.0
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise DeepETPickerError(f"{path}, {where}: score is {score!r}, not a number.")
        scores.append(float(score))
    object_name = str(data.get("pickable_object_name") or "")
    cls = ids.id_for(object_name or None, None if object_name else 1)
    xyz = from_angstrom(np.array(locations).reshape(-1, 3), voxel)
    return [Picks(np.full(len(xyz), cls), xyz, np.array(scores), name, voxel,
                  {"object": object_name})]


@_reads("ndjson")
def _read_ndjson(path: Path, geometry: _Geometry, ids: _ClassIds,
                 num_cls: Optional[int]) -> list[Picks]:
    locations = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        point = _load_json(path, line, lineno)
        kind = point.get("type") if isinstance(point, dict) else None
        if kind not in ("point", "orientedPoint"):
            raise DeepETPickerError(
                f"{path}, line {lineno}: 'type' is {kind!r}; point annotations have type "
                f"'point' or 'orientedPoint' (segmentations cannot be read as picks).")
        locations.append(_location(path, f"line {lineno}", point))
    tomo, cls, name = _split_object_stem(path.stem, ids, geometry.known_names())
    xyz = np.array(locations, dtype=np.float64).reshape(-1, 3)
    meta = {"object": name} if name else {}
    return [Picks(np.full(len(xyz), cls), xyz, None, tomo, geometry.voxel(tomo), meta)]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def check_export(formats: Union[str, Sequence[str]], class_names: Optional[Sequence[str]] = None,
                 binning: Optional[float] = None, tilt_series_pixel_size: Optional[float] = None,
                 tomo_name: TomoNameSpec = None) -> None:
    """Raise now what :func:`write_format` would refuse later for reasons other than the
    picks themselves: unknown formats, class names a format cannot hold, bad RELION options.
    Lets a long job (prediction) fail before it starts rather than after."""
    formats = [formats] if isinstance(formats, str) else list(formats)
    for fmt in formats:
        format_spec(fmt)
        check_class_names(class_names, fmt)
    check_class_names(class_names)
    _positive(binning, "Binning")
    _positive(tilt_series_pixel_size, "Tilt-series pixel size")
    tomo_names(tomo_name)


def write_format(picks_list: Union[Picks, Sequence[Picks]], fmt: str, out_dir: PathLike,
                 voxel_size: VoxelSpec = None, shapes: ShapeSpec = None,
                 class_names: Optional[Sequence[str]] = None, *,
                 binning: Optional[float] = None,
                 tilt_series_pixel_size: Optional[float] = None,
                 tomo_name: TomoNameSpec = None) -> list[Path]:
    """Write tables (one per tomogram) in format ``fmt`` under ``out_dir``; returns the files.

    Tables with the same tomogram name are merged. ``voxel_size`` (Angstrom; or a mapping
    from tomogram name) defaults to each table's own voxel size and is needed by copick and
    RELION 5; ``shapes`` ((z, y, x) for all, a list in table order, or a mapping from name)
    is needed by RELION 5. ``class_names`` names the objects of box, copick and ndjson files
    (copick refuses some names, see :func:`copick_name_problem`). RELION 4 coordinates are
    multiplied by the binning (``binning``, or the voxel size over ``tilt_series_pixel_size``
    or the table's own, see :func:`relion4_binning`). ``tomo_name`` sets rlnTomoName for
    RELION 4/5 (see :func:`tomo_names`). Every file is written atomically.
    """
    format_spec(fmt)
    check_class_names(class_names, fmt)
    tables = _merge_by_tomogram([picks_list] if isinstance(picks_list, Picks) else picks_list)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geometry = _Geometry(shapes, voxel_size, _positive(binning, "Binning"),
                         _positive(tilt_series_pixel_size, "Tilt-series pixel size"),
                         tomo_names(tomo_name))
    return _WRITERS[fmt](tables, out_dir, geometry, class_names)


def _merge_by_tomogram(tables: Iterable[Picks]) -> list[Picks]:
    groups: dict[str, list[Picks]] = {}
    for table in tables:
        groups.setdefault(table.tomo_name or "picks", []).append(table)
    merged = []
    for name, group in groups.items():
        table = Picks.concat(group) if len(group) > 1 else group[0].copy()
        table.tomo_name = name
        merged.append(table)
    return merged


def _per_object(table: Picks, class_names: Optional[Sequence[str]]) -> list[tuple[str, Picks]]:
    """(file-name suffix, rows) per class; a table of unnamed class 1 alone needs no suffix."""
    ids = sorted(set(table.classes.tolist())) or [1]
    if ids == [1] and class_name(1, class_names) == "class-1":
        return [("", table)]
    return [(_object_suffix(k, class_names), table.of_class(k)) for k in ids]


@_writes("coords")
def _write_coords(tables, out_dir, geometry, class_names) -> list[Path]:
    return [write_picks(out_dir / f"{t.tomo_name}.coords", t) for t in tables]


@_writes("box")
def _write_box(tables, out_dir, geometry, class_names) -> list[Path]:
    written = []
    for table in tables:
        for suffix, rows in _per_object(table, class_names):
            path = out_dir / f"{table.tomo_name}{suffix}.box"
            lines = ["\t".join(format_number(v) for v in xyz) for xyz in rows.xyz]
            write_text_atomic(path, "".join(line + "\n" for line in lines))
            written.append(path)
    return written


def _class_confidence(table: Picks):
    """The class confidence of each pick of a predicted table, or None."""
    values = table.meta.get("class_confidence")
    if values is None or len(values) != len(table):
        return None
    return np.asarray(values, np.float64)


def _star_frame(tables: Sequence[Picks], name_label: str, name_of, coords_of,
                optics_group_of=None):
    """One particles table (a pandas DataFrame) for all tomograms; ``coords_of(table, index)``
    gives the coordinate labels and values, ``name_of(table)`` the tomogram column and
    ``optics_group_of(table)`` (when given) the rlnOpticsGroup column."""
    import pandas as pd

    has_scores = bool(tables) and all(t.scores is not None for t in tables)
    labels = coords_of(tables[0], 0)[0] if tables else _XYZ_PIXEL
    columns: dict[str, list] = {name_label: [], **{c: [] for c in labels}, _CLASS: []}
    if has_scores:
        columns[_SCORE] = []
    has_confidence = bool(tables) and all(_class_confidence(t) is not None for t in tables)
    if has_confidence:
        columns[_CLASS_CONFIDENCE] = []
    if optics_group_of is not None:
        columns[_OPTICS_GROUP] = []
    for index, table in enumerate(tables):
        _, xyz = coords_of(table, index)
        columns[name_label] += [name_of(table)] * len(table)
        for label, values in zip(labels, xyz.T):
            columns[label] += values.tolist()
        columns[_CLASS] += table.classes.tolist()
        if has_scores:
            columns[_SCORE] += table.scores.tolist()
        if has_confidence:
            columns[_CLASS_CONFIDENCE] += _class_confidence(table).tolist()
        if optics_group_of is not None:
            columns[_OPTICS_GROUP] += [optics_group_of(table)] * len(table)
    return pd.DataFrame(columns)


def _write_star_file(path: Path, frame, optics=None) -> Path:
    """Particles first, so RELION's importers (which read the first data block) find them;
    ``data_optics`` after, found by name as RELION's ParticleSet reads it."""
    import starfile

    blocks = {"particles": frame}
    if optics is not None:
        blocks["optics"] = optics
    with atomic_path(path) as tmp:
        starfile.write(blocks, tmp, float_format="%.6f")
    return path


def _optics_table(pixel_sizes: Mapping[str, float]):
    """Optics groups, one per distinct tilt-series pixel size: (frame, tomogram -> group)."""
    import pandas as pd

    groups: dict[float, int] = {}
    group_of = {}
    for name, size in pixel_sizes.items():
        key = round(float(size), 6)
        groups.setdefault(key, len(groups) + 1)
        group_of[name] = groups[key]
    frame = pd.DataFrame({_OPTICS_GROUP: list(groups.values()),
                          _OPTICS_NAME: [f"opticsGroup{g}" for g in groups.values()],
                          _TS_PIXEL: list(groups)})
    return frame, group_of


def _relion_names(tables: Sequence[Picks], geometry: _Geometry) -> dict[str, str]:
    """rlnTomoName of each table's tomogram."""
    return {t.tomo_name: geometry.names.relion(t.tomo_name) if geometry.names else t.tomo_name
            for t in tables}


@_writes("star")
def _write_star3(tables, out_dir, geometry, class_names) -> list[Path]:
    frame = _star_frame(tables, _MICROGRAPH, lambda t: f"{t.tomo_name}.mrc",
                        lambda t, i: (_XYZ_PIXEL, t.xyz))
    return [_write_star_file(out_dir / "particles.star", frame)]


@_writes("relion4")
def _write_relion4(tables, out_dir, geometry, class_names) -> list[Path]:
    names = _relion_names(tables, geometry)
    scale = {}
    for table in tables:
        ts = geometry.ts_pixel or table.meta.get("tilt_series_pixel_size")
        scale[table.tomo_name] = relion4_binning(
            table.tomo_name, geometry.voxel(table.tomo_name, table.voxel_size), ts,
            geometry.binning)
    pixel_sizes = {name: s[2] for name, s in scale.items()}
    optics, group_of = (None, None)
    if tables and all(size is not None for size in pixel_sizes.values()):
        optics, group_of = _optics_table(pixel_sizes)
    frame = _star_frame(
        tables, _TOMO, lambda t: names[t.tomo_name],
        lambda t, i: (_XYZ_PIXEL, to_tilt_series_pixels(t.xyz, scale[t.tomo_name][0])),
        (lambda t: group_of[t.tomo_name]) if group_of else None)
    return [_write_star_file(out_dir / "particles_relion4.star", frame, optics)]


@_writes("relion5")
def _write_relion5(tables, out_dir, geometry, class_names) -> list[Path]:
    names = _relion_names(tables, geometry)
    pixel_sizes = {}

    def centred(table: Picks, index: int):
        shape = _require_shape(table.tomo_name, geometry.shape(table.tomo_name, index),
                               geometry=geometry)
        ts = geometry.ts_pixel or table.meta.get("tilt_series_pixel_size")
        voxel = geometry.voxel(table.tomo_name, table.voxel_size)
        if geometry.binning is not None:
            _, voxel, ts = relion4_binning(table.tomo_name, voxel, ts, geometry.binning)
        voxel = _require_voxel("relion5", table.tomo_name, voxel, geometry=geometry)
        pixel_sizes[table.tomo_name] = ts
        return _XYZ_CENTRED, to_centred_angstrom(table.xyz, shape, voxel)

    for index, table in enumerate(tables):  # check every tomogram before writing anything
        centred(table, index)
    optics, group_of = (None, None)
    if tables and all(size is not None for size in pixel_sizes.values()):
        optics, group_of = _optics_table(pixel_sizes)
    frame = _star_frame(tables, _TOMO, lambda t: names[t.tomo_name], centred,
                        (lambda t: group_of[t.tomo_name]) if group_of else None)
    return [_write_star_file(out_dir / "particles_relion5.star", frame, optics)]


@_writes("tbl")
def _write_tbl(tables, out_dir, geometry, class_names) -> list[Path]:
    lines, tag = [], 0
    for tomo_index, table in enumerate(tables, start=1):
        xyz = to_one_based(table.xyz)
        for i in range(len(table)):
            tag += 1
            row = [0.0] * _TBL_COLUMNS
            row[_TBL_TAG - 1] = tag
            row[_TBL_ALIGNED - 1] = 1
            row[_TBL_TOMO - 1] = tomo_index
            row[_TBL_CLASS - 1] = int(table.classes[i])
            if table.scores is not None:
                row[_TBL_CC - 1] = float(table.scores[i])
            for column, value in zip(_TBL_XYZ, xyz[i]):
                row[column - 1] = value
            lines.append(" ".join(format_number(v) for v in row))
    table_path, map_path = out_dir / "particles.tbl", out_dir / "particles.doc"
    write_text_atomic(table_path, "".join(line + "\n" for line in lines))
    write_text_atomic(map_path, "".join(f"{i} {t.tomo_name}.mrc\n"
                                        for i, t in enumerate(tables, start=1)))
    return [table_path, map_path]


@_writes("copick")
def _write_copick(tables, out_dir, geometry, class_names) -> list[Path]:
    voxels = {t.tomo_name: _require_voxel("copick", t.tomo_name,
                                          geometry.voxel(t.tomo_name, t.voxel_size),
                                          geometry=geometry) for t in tables}
    written = []
    for table in tables:
        voxel = voxels[table.tomo_name]
        for cls in sorted(set(table.classes.tolist())) or [1]:
            rows = table.of_class(cls)
            object_name = class_name(cls, class_names)
            locations = to_angstrom(rows.xyz, voxel)
            scores = rows.scores if rows.scores is not None else np.ones(len(rows))
            document = {
                "pickable_object_name": object_name,
                "user_id": COPICK_USER,
                "session_id": COPICK_SESSION,
                "run_name": table.tomo_name,
                "voxel_spacing": voxel,
                "unit": "angstrom",
                "points": [{"location": {"x": float(x), "y": float(y), "z": float(z)},
                            "transformation_": np.eye(4).tolist(),
                            "instance_id": 0, "score": float(s)}
                           for (x, y, z), s in zip(locations, scores)],
                "trust_orientation": False,
            }
            path = (out_dir / "ExperimentRuns" / table.tomo_name / "Picks"
                    / f"{COPICK_USER}_{COPICK_SESSION}_{object_name}.json")
            write_text_atomic(path, json.dumps(document, indent=2) + "\n")
            written.append(path)
    return written


@_writes("ndjson")
def _write_ndjson(tables, out_dir, geometry, class_names) -> list[Path]:
    written = []
    for table in tables:
        for suffix, rows in _per_object(table, class_names):
            path = out_dir / f"{table.tomo_name}{suffix}.ndjson"
            lines = [json.dumps({"type": "point",
                                 "location": {"x": float(x), "y": float(y), "z": float(z)}})
                     for x, y, z in rows.xyz]
            write_text_atomic(path, "".join(line + "\n" for line in lines))
            written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Conversion (the `deepetpicker convert` command)
# --------------------------------------------------------------------------------------------
def _expand_inputs(paths: Sequence[PathLike]) -> list[Path]:
    files: list[Path] = []
    suffixes = pick_file_suffixes()
    for item in paths:
        item = Path(item)
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file()
                           and p.suffix.lower() in suffixes and not p.name.startswith("."))
            if not found:
                raise DeepETPickerError(f"No pick files ({', '.join(suffixes)}) in {item}.")
            files += found
        else:
            files.append(item)
    return files


def _tomogram_geometry(tomograms: Sequence[PathLike]) -> tuple[dict, dict, dict]:
    """(shapes, voxel sizes, paths) of the tomograms, by file name without extension."""
    from deepetpicker.io.tomogram import find_tomograms, load_tomogram

    shapes, voxels, paths = {}, {}, {}
    for item in tomograms:
        for path in find_tomograms(item):
            tomo = load_tomogram(path, mmap=True)
            shapes[path.stem] = tomo.shape
            paths[path.stem] = str(path)
            if tomo.voxel_size:
                voxels[path.stem] = tomo.voxel_size
    return shapes, voxels, paths


def convert(paths: Sequence[PathLike], fmt: str, out_dir: PathLike,
            voxel_size: Optional[float] = None, class_id: Optional[int] = None,
            shapes: ShapeSpec = None, tomograms: Optional[Sequence[PathLike]] = None,
            class_names: Optional[Sequence[str]] = None, *,
            binning: Optional[float] = None, tilt_series_pixel_size: Optional[float] = None,
            tomo_name: TomoNameSpec = None, overwrite: bool = False) -> list[Path]:
    """Read pick files (any format; folders are searched) and write them as ``fmt``.

    Nothing is written over an input or a file DeepETPicker did not write, and a file an
    earlier run wrote from other inputs or settings only with ``overwrite``
    (:class:`~deepetpicker.io.outputs.OutputGuard`); all of it is checked before writing.

    ``voxel_size`` (Angstrom) applies to every tomogram; ``tomograms`` (files or folders of
    MRC tomograms named like the picks' tomograms) supply shapes and voxel sizes from their
    headers, and every pick table must then find its tomogram. ``shapes`` overrides those
    shapes ((z, y, x) for all, or a mapping from name). ``class_id`` keeps only that class.
    ``class_names`` names class 1, 2, ...; object names met in the files are kept. ``binning``,
    ``tilt_series_pixel_size`` and ``tomo_name`` apply to RELION 4/5 files read and written
    (see :func:`read_any`). Returns the files written.
    """
    format_spec(fmt, "output format")
    from deepetpicker.io.outputs import OutputGuard, file_stamp

    check_export(fmt, class_names, binning, tilt_series_pixel_size, tomo_name)
    names = tomo_names(tomo_name)
    files = _expand_inputs(paths)
    if not files:
        raise DeepETPickerError("No pick files given to convert.")
    guard = OutputGuard(out_dir, overwrite=overwrite, inputs=[*files, *(tomograms or ())])
    if names is not None and fmt not in RELION_TOMO_FORMATS \
            and not any(detect_format(f) in RELION_TOMO_FORMATS for f in files if f.exists()):
        raise DeepETPickerError(
            f"--tomo-name sets rlnTomoName of RELION 4/5 files, but neither the output format "
            f"{fmt!r} nor any input file is one. Leave it out, or convert --to relion4/relion5.")
    tomo_shapes, tomo_voxels, tomo_paths = _tomogram_geometry(tomograms or ())
    if tomograms and not tomo_paths:
        raise DeepETPickerError(
            f"No tomograms (.mrc, .rec, ...) found in --tomogram "
            f"{' '.join(str(t) for t in tomograms)}.")
    shape_spec: ShapeSpec = shapes if shapes is not None else (tomo_shapes or None)
    voxel_spec: VoxelSpec = voxel_size if voxel_size is not None else (tomo_voxels or None)
    names_found: list = list(class_names or [])
    ids = _ClassIds(names_found)
    tables: list[Picks] = []
    for path in files:
        tables += read_any(path, shape=shape_spec, voxel_size=voxel_spec, class_names=ids,
                           binning=binning, tilt_series_pixel_size=tilt_series_pixel_size,
                           tomo_name=names, tomograms=tomo_paths)
    if tomo_paths:
        unmatched = [t for t in tables if t.tomo_name not in tomo_paths]
        if unmatched:
            listed = "; ".join(f"'{t.tomo_name}' from {t.meta.get('source')}"
                               for t in unmatched)
            given = ", ".join(f"{stem} ({path})" for stem, path in sorted(tomo_paths.items()))
            raise DeepETPickerError(
                f"No tomogram given with --tomogram matches the picks of {listed}. Tomograms "
                f"given: {given}. A tomogram matches when its file name without extension is "
                f"the picks' tomogram name (the pick file's name, or rlnTomoName/run_name "
                f"inside it; --tomo-name maps RELION names). Rename the files or give the "
                f"matching tomograms.")
    for table in tables:
        if table.voxel_size is None:
            table.voxel_size = _Geometry(None, voxel_spec).voxel(table.tomo_name)
    if class_id is not None:
        found = sorted({int(c) for t in tables for c in t.classes})
        tables = [t.of_class(class_id) for t in tables if np.any(t.classes == class_id)]
        if not tables:
            raise DeepETPickerError(
                f"No picks of class {class_id} in {', '.join(str(f) for f in files)}; the "
                f"classes present are {found or 'none'}.")

    def write(folder):
        return write_format(tables, fmt, folder, voxel_size=voxel_spec, shapes=shape_spec,
                            class_names=names_found or None, binning=binning,
                            tilt_series_pixel_size=tilt_series_pixel_size, tomo_name=names)

    # the same inputs and options give the same files: those may be written again
    tag = json.dumps(["convert", fmt, [file_stamp(f) for f in files], voxel_size, class_id,
                      shapes, [str(t) for t in tomograms or ()], names_found, binning,
                      tilt_series_pixel_size, tomo_name], sort_keys=True, default=str)
    guard.check(guard.files_written_by(write), tag=tag)
    written = write(guard.folder)
    guard.record(written, tag=tag)
    return written
