"""Pick files of other programs: the one place that knows their conventions.

Inside DeepETPicker a pick is ``(class, x, y, z, score)`` in 0-based voxels of the tomogram
it was picked in (:class:`~deepetpicker.io.picks.Picks`). Every other convention is turned
into that one here, by the small named functions in the "Conventions" section, and nowhere
else.

=========  ==============================================  ==========================  =====
format     file(s) written under ``out_dir``               coordinates                 class
=========  ==============================================  ==========================  =====
coords     ``<tomo>.coords``: tab-separated                0-based voxels              yes
           ``class x y z [score]`` (the original program)
box        ``<tomo>[_<object>].box``: EMAN2 3-D box file,  0-based voxels, particle    name
           ``x y z`` centres separated by tabs, as         centres
           e2spt_boxer's "Save Box Coord" writes them
star       ``particles.star``: RELION 3 particles,         0-based voxels              yes
           ``rlnMicrographName`` + ``rlnCoordinateX/Y/Z``
relion4    ``particles_relion4.star``: RELION 4 tomo       0-based voxels of the       yes
           particles, ``rlnTomoName`` +                    picked tomogram (RELION 4
           ``rlnCoordinateX/Y/Z``                          wants unbinned tilt-series
                                                           pixels: multiply by the
                                                           binning if it differs)
relion5    ``particles_relion5.star``: RELION 5 tomo       Angstrom from the tomogram  yes
           particles, ``rlnTomoName`` +                    centre ``size / 2``; needs
           ``rlnCenteredCoordinateX/Y/ZAngst``             shape and voxel size
tbl        ``particles.tbl`` + ``particles.doc`` (Dynamo   1-based voxels (MATLAB)     yes
           table and table map; columns 1 tag, 10 cc =
           score, 20 tomogram index, 22 class, 24-26
           x y z)
copick     ``ExperimentRuns/<run>/Picks/deepetpicker_0_    Angstrom, ``voxel *         name
           <object>.json`` (a copick overlay tree)         voxel_size``
ndjson     ``<tomo>[_<object>].ndjson``: CryoET Data       0-based voxels              name
           Portal point annotations, one JSON object
           ``{"type": "point", "location": {...}}``
           per line
=========  ==============================================  ==========================  =====

RELION writes and reads pixel coordinates 0-based since 4.1 (``ParticleSet::getPosition``
no longer adds 1; extraction windows start at index 0) and centres tomograms at
``size / 2`` (``TomogramSet::loadTomogram``). Dynamo is MATLAB, so its positions are
1-based. EMAN2's boxer writes whole voxels and truncates what it reads to whole voxels; the
box files written here keep sub-voxel values so that they read back exactly. Scores travel
in ``rlnAutopickFigureOfMerit`` (STAR), the ``cc`` column (Dynamo) and ``score`` (copick);
EMAN2 box and Data Portal points have no score. Formats that hold one object per file (box,
copick, ndjson) name the object ``class-<k>`` or, when ``class_names`` is given,
``class_names[k - 1]``; reading maps those names back to class ids. RELION origin shifts
(``rlnOrigin*Angst``) and orientations are not applied: picks are positions.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path, write_text_atomic
from deepetpicker.io.picks import (PICK_SUFFIXES, Picks, check_in_bounds, format_number,
                                   parse_numbers, read_picks, write_picks)

PathLike = Union[str, os.PathLike]
Shape = tuple[int, int, int]
ShapeSpec = Union[None, Sequence[int], Sequence[Sequence[int]], Mapping[str, Sequence[int]]]
VoxelSpec = Union[None, float, Mapping[str, float]]

FORMATS = ("coords", "box", "star", "relion4", "relion5", "tbl", "copick", "ndjson")
FORMAT_HELP = {
    "coords": "DeepETPicker table (.coords), class x y z [score]",
    "box": "EMAN2 3-D box file (.box), x y z centres",
    "star": "RELION 3 particle STAR (rlnMicrographName, rlnCoordinateX/Y/Z)",
    "relion4": "RELION 4 tomography particle STAR (rlnTomoName, rlnCoordinateX/Y/Z)",
    "relion5": "RELION 5 tomography particle STAR (rlnCenteredCoordinateX/Y/ZAngst)",
    "tbl": "Dynamo table (.tbl) with table map (.doc)",
    "copick": "copick picks JSON (Angstrom locations)",
    "ndjson": "CryoET Data Portal point annotations (.ndjson)",
}
COPICK_USER = "deepetpicker"
COPICK_SESSION = "0"  # copick's session id for picks made by a tool

# STAR labels
_MICROGRAPH = "rlnMicrographName"
_TOMO = "rlnTomoName"
_XYZ_PIXEL = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
_XYZ_CENTRED = ("rlnCenteredCoordinateXAngst", "rlnCenteredCoordinateYAngst",
                "rlnCenteredCoordinateZAngst")
_CLASS = "rlnClassNumber"
_SCORE = "rlnAutopickFigureOfMerit"

# Dynamo table columns (1-based, as in the Dynamo table convention)
_TBL_COLUMNS = 35
_TBL_TAG, _TBL_ALIGNED, _TBL_CC, _TBL_TOMO, _TBL_CLASS = 1, 2, 10, 20, 22
_TBL_SHIFT = (4, 5, 6)
_TBL_XYZ = (24, 25, 26)
# The columns read back (others, e.g. a complex-valued daxis, are left alone).
_TBL_READ = (_TBL_CC, _TBL_TOMO, _TBL_CLASS) + _TBL_SHIFT + _TBL_XYZ


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


def _split_object_stem(stem: str, class_names: Optional[Sequence[str]]) -> tuple[str, int]:
    """``<tomo>_<object>`` -> (tomo, class); a stem without a known object is class 1."""
    for name in (class_names or ()):
        if stem.endswith("_" + name) and len(stem) > len(name) + 1:
            return stem[: -len(name) - 1], class_from_name(name, class_names) or 1
    match = re.fullmatch(r"(.+)_class-(\d+)", stem)
    if match and int(match.group(2)) >= 1:
        return match.group(1), int(match.group(2))
    return stem, 1


# --------------------------------------------------------------------------------------------
# Shapes and voxel sizes per tomogram
# --------------------------------------------------------------------------------------------
@dataclass
class _Geometry:
    """Where shapes and voxel sizes come from: one value for all tomograms, a list in table
    order, or a mapping from tomogram name."""

    shapes: ShapeSpec = None
    voxel_size: VoxelSpec = None

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


def _require_voxel(fmt: str, name: str, voxel: Optional[float], source: str = "") -> float:
    if voxel is None:
        where = f"{source}: " if source else ""
        raise DeepETPickerError(
            f"{where}the {fmt} format stores coordinates in Angstrom, so the voxel size of "
            f"tomogram '{name}' is needed. Give it with --voxel-size A (Angstrom per voxel) or "
            f"point --tomogram at the tomogram so it is read from the MRC header.")
    return voxel


def _require_shape(name: str, shape: Optional[Shape], source: str = "") -> Shape:
    if shape is None:
        where = f"{source}: " if source else ""
        raise DeepETPickerError(
            f"{where}RELION 5 coordinates are Angstrom from the tomogram centre, so the shape "
            f"of tomogram '{name}' is needed. Give it with --shape Z Y X or point --tomogram "
            f"at the tomogram.")
    return shape


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def detect_format(path: PathLike) -> str:
    """The format of a pick file, from its extension (and the labels of a STAR file)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICK_SUFFIXES:
        return "coords"
    if suffix == ".box":
        return "box"
    if suffix == ".tbl":
        return "tbl"
    if suffix == ".json":
        return "copick"
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".star":
        text = _read_text(path)
        if _XYZ_CENTRED[0] in text:
            return "relion5"
        if _TOMO in text:
            return "relion4"
        return "star"
    raise DeepETPickerError(
        f"Cannot tell the format of {path} from its extension {path.suffix!r}. Pick files "
        f"are .coords/.txt/.csv, .box (EMAN2), .star (RELION), .tbl (Dynamo), .json "
        f"(copick) or .ndjson (CryoET Data Portal).")


def read_any(path: PathLike, shape: ShapeSpec = None, voxel_size: VoxelSpec = None,
             num_cls: Optional[int] = None,
             class_names: Optional[Sequence[str]] = None) -> list[Picks]:
    """Read a pick file of any supported format as one table per tomogram.

    ``shape`` is a (z, y, x) shape for every tomogram or a mapping from tomogram name; when
    known, picks outside the tomogram are an error, and RELION 5 files need it. ``voxel_size``
    (Angstrom, or a mapping from tomogram name) is required by copick files without a voxel
    spacing and by RELION 5, and is attached to the tables. ``class_names`` maps object names
    (box, copick, ndjson) to class ids. Each table's ``meta`` holds ``format`` and ``source``.
    """
    path = Path(path)
    if not path.exists():
        raise DeepETPickerError(f"Pick file not found: {path}")
    if path.is_dir():
        raise DeepETPickerError(f"{path} is a folder; give the pick files inside it.")
    fmt = detect_format(path)
    geometry = _Geometry(shape, voxel_size)
    if fmt == "coords":
        name = path.stem
        tables = [read_picks(path, shape=geometry.shape(name), num_cls=num_cls,
                             voxel_size=geometry.voxel(name))]
    else:
        reader = {"box": _read_box, "star": _read_star, "relion4": _read_star,
                  "relion5": _read_star, "tbl": _read_tbl, "copick": _read_copick,
                  "ndjson": _read_ndjson}[fmt]
        tables = reader(path, geometry, class_names)
        for table in tables:
            _check_table(path, table, geometry.shape(table.tomo_name), num_cls)
    for table in tables:
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


def _read_box(path: Path, geometry: _Geometry,
              class_names: Optional[Sequence[str]]) -> list[Picks]:
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
    tomo, cls = _split_object_stem(path.stem, class_names)
    xyz = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return [Picks(np.full(len(xyz), cls), xyz, None, tomo, geometry.voxel(tomo))]


def _star_blocks(path: Path) -> dict:
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True)
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


def _read_star(path: Path, geometry: _Geometry,
               class_names: Optional[Sequence[str]]) -> list[Picks]:
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
    if _TOMO in df.columns:
        names = df[_TOMO].astype(str).to_numpy()
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
    tables = []
    for index, name in enumerate(dict.fromkeys(names)):
        rows = names == name
        voxel = geometry.voxel(name)
        xyz = coords[rows]
        if centred:
            shape = _require_shape(name, geometry.shape(name, index), str(path))
            voxel = _require_voxel("relion5", name, voxel, str(path))
            xyz = from_centred_angstrom(xyz, shape, voxel)
        tables.append(Picks(classes[rows], xyz, None if scores is None else scores[rows],
                            str(name), voxel))
    return tables


def _read_tbl(path: Path, geometry: _Geometry,
              class_names: Optional[Sequence[str]]) -> list[Picks]:
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


def _read_copick(path: Path, geometry: _Geometry,
                 class_names: Optional[Sequence[str]]) -> list[Picks]:
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
    voxel = _require_voxel("copick", name, geometry.voxel(name, file_voxel), str(path))
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
    object_name = str(data.get("pickable_object_name", ""))
    cls = class_from_name(object_name, class_names) or 1
    xyz = from_angstrom(np.array(locations).reshape(-1, 3), voxel)
    return [Picks(np.full(len(xyz), cls), xyz, np.array(scores), name, voxel,
                  {"object": object_name})]


def _read_ndjson(path: Path, geometry: _Geometry,
                 class_names: Optional[Sequence[str]]) -> list[Picks]:
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
    tomo, cls = _split_object_stem(path.stem, class_names)
    xyz = np.array(locations, dtype=np.float64).reshape(-1, 3)
    return [Picks(np.full(len(xyz), cls), xyz, None, tomo, geometry.voxel(tomo))]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def write_format(picks_list: Union[Picks, Sequence[Picks]], fmt: str, out_dir: PathLike,
                 voxel_size: VoxelSpec = None, shapes: ShapeSpec = None,
                 class_names: Optional[Sequence[str]] = None) -> list[Path]:
    """Write tables (one per tomogram) in format ``fmt`` under ``out_dir``; returns the files.

    Tables with the same tomogram name are merged. ``voxel_size`` (Angstrom; or a mapping
    from tomogram name) defaults to each table's own voxel size and is needed by copick and
    RELION 5; ``shapes`` ((z, y, x) for all, a list in table order, or a mapping from name)
    is needed by RELION 5. ``class_names`` names the objects of box, copick and ndjson files.
    Every file is written atomically.
    """
    if fmt not in FORMATS:
        raise DeepETPickerError(
            f"Unknown pick format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    tables = _merge_by_tomogram([picks_list] if isinstance(picks_list, Picks) else picks_list)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geometry = _Geometry(shapes, voxel_size)
    writer = {"coords": _write_coords, "box": _write_box, "star": _write_star3,
              "relion4": _write_relion4, "relion5": _write_relion5, "tbl": _write_tbl,
              "copick": _write_copick, "ndjson": _write_ndjson}[fmt]
    return writer(tables, out_dir, geometry, class_names)


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
    """(file-name suffix, rows) per class; a table of class 1 alone needs no suffix."""
    ids = sorted(set(table.classes.tolist())) or [1]
    if ids == [1] and not class_names:
        return [("", table)]
    return [("_" + class_name(k, class_names), table.of_class(k)) for k in ids]


def _write_coords(tables, out_dir, geometry, class_names) -> list[Path]:
    return [write_picks(out_dir / f"{t.tomo_name}.coords", t) for t in tables]


def _write_box(tables, out_dir, geometry, class_names) -> list[Path]:
    written = []
    for table in tables:
        for suffix, rows in _per_object(table, class_names):
            path = out_dir / f"{table.tomo_name}{suffix}.box"
            lines = ["\t".join(format_number(v) for v in xyz) for xyz in rows.xyz]
            write_text_atomic(path, "".join(line + "\n" for line in lines))
            written.append(path)
    return written


def _star_frame(tables: Sequence[Picks], name_label: str, name_of, coords_of):
    """One particles table (a pandas DataFrame) for all tomograms; ``coords_of(table, index)``
    gives the coordinate labels and values, ``name_of(table)`` the tomogram column."""
    import pandas as pd

    has_scores = bool(tables) and all(t.scores is not None for t in tables)
    labels = coords_of(tables[0], 0)[0] if tables else _XYZ_PIXEL
    columns: dict[str, list] = {name_label: [], **{c: [] for c in labels}, _CLASS: []}
    if has_scores:
        columns[_SCORE] = []
    for index, table in enumerate(tables):
        _, xyz = coords_of(table, index)
        columns[name_label] += [name_of(table)] * len(table)
        for label, values in zip(labels, xyz.T):
            columns[label] += values.tolist()
        columns[_CLASS] += table.classes.tolist()
        if has_scores:
            columns[_SCORE] += table.scores.tolist()
    return pd.DataFrame(columns)


def _write_star_file(path: Path, frame) -> Path:
    import starfile

    with atomic_path(path) as tmp:
        starfile.write({"particles": frame}, tmp, float_format="%.6f")
    return path


def _write_star3(tables, out_dir, geometry, class_names) -> list[Path]:
    frame = _star_frame(tables, _MICROGRAPH, lambda t: f"{t.tomo_name}.mrc",
                        lambda t, i: (_XYZ_PIXEL, t.xyz))
    return [_write_star_file(out_dir / "particles.star", frame)]


def _write_relion4(tables, out_dir, geometry, class_names) -> list[Path]:
    frame = _star_frame(tables, _TOMO, lambda t: t.tomo_name, lambda t, i: (_XYZ_PIXEL, t.xyz))
    return [_write_star_file(out_dir / "particles_relion4.star", frame)]


def _write_relion5(tables, out_dir, geometry, class_names) -> list[Path]:
    def centred(table: Picks, index: int):
        shape = _require_shape(table.tomo_name, geometry.shape(table.tomo_name, index))
        voxel = _require_voxel("relion5", table.tomo_name,
                               geometry.voxel(table.tomo_name, table.voxel_size))
        return _XYZ_CENTRED, to_centred_angstrom(table.xyz, shape, voxel)

    frame = _star_frame(tables, _TOMO, lambda t: t.tomo_name, centred)
    return [_write_star_file(out_dir / "particles_relion5.star", frame)]


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


def _write_copick(tables, out_dir, geometry, class_names) -> list[Path]:
    written = []
    for table in tables:
        voxel = _require_voxel("copick", table.tomo_name,
                               geometry.voxel(table.tomo_name, table.voxel_size))
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
    suffixes = PICK_SUFFIXES + (".box", ".star", ".tbl", ".json", ".ndjson", ".jsonl")
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


def _tomogram_geometry(tomograms: Sequence[PathLike]) -> tuple[dict, dict]:
    from deepetpicker.io.tomogram import find_tomograms, load_tomogram

    shapes, voxels = {}, {}
    for item in tomograms:
        for path in find_tomograms(item):
            tomo = load_tomogram(path, mmap=True)
            shapes[path.stem] = tomo.shape
            if tomo.voxel_size:
                voxels[path.stem] = tomo.voxel_size
    return shapes, voxels


def convert(paths: Sequence[PathLike], fmt: str, out_dir: PathLike,
            voxel_size: Optional[float] = None, class_id: Optional[int] = None,
            shapes: ShapeSpec = None, tomograms: Optional[Sequence[PathLike]] = None,
            class_names: Optional[Sequence[str]] = None) -> list[Path]:
    """Read pick files (any format; folders are searched) and write them as ``fmt``.

    ``voxel_size`` (Angstrom) applies to every tomogram; ``tomograms`` (files or folders of
    MRC tomograms named like the picks' tomograms) supply shapes and voxel sizes from their
    headers. ``shapes`` overrides those shapes ((z, y, x) for all, or a mapping from name).
    ``class_id`` keeps only that class. Returns the files written.
    """
    if fmt not in FORMATS:
        raise DeepETPickerError(
            f"Unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    files = _expand_inputs(paths)
    if not files:
        raise DeepETPickerError("No pick files given to convert.")
    tomo_shapes, tomo_voxels = _tomogram_geometry(tomograms or ())
    shape_spec: ShapeSpec = shapes if shapes is not None else (tomo_shapes or None)
    voxel_spec: VoxelSpec = voxel_size if voxel_size is not None else (tomo_voxels or None)
    tables: list[Picks] = []
    for path in files:
        tables += read_any(path, shape=shape_spec, voxel_size=voxel_spec,
                           class_names=class_names)
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
    return write_format(tables, fmt, out_dir, voxel_size=voxel_spec, shapes=shape_spec,
                        class_names=class_names)
