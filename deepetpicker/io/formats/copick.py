"""copick picks files (JSON, Angstrom from the first voxel's centre, with scores) and the
CryoET Data Portal's point annotations (``.ndjson``, voxels, no score).

Both hold one object per file; :mod:`deepetpicker.io.formats.names` gives the names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import write_text_atomic
from deepetpicker.io.formats.conventions import from_angstrom, to_angstrom
from deepetpicker.io.formats.geometry import Geometry, object_file_picks, require_voxel
from deepetpicker.io.formats.names import ClassIds, class_name, write_object_files
from deepetpicker.io.formats.registry import reads, writes
from deepetpicker.io.formats.text import read_text
from deepetpicker.io.picks import Picks

COPICK_USER = "deepetpicker"
COPICK_SESSION = "0"  # copick's session id for picks made by a tool


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


@reads("copick")
def _read_copick(path: Path, geometry: Geometry, ids: ClassIds,
                 num_cls: Optional[int]) -> list[Picks]:
    data = _load_json(path, read_text(path))
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
    voxel = require_voxel("copick", name, geometry.voxel(name, file_voxel), str(path),
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


@reads("ndjson")
def _read_ndjson(path: Path, geometry: Geometry, ids: ClassIds,
                 num_cls: Optional[int]) -> list[Picks]:
    locations = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        point = _load_json(path, line, lineno)
        kind = point.get("type") if isinstance(point, dict) else None
        if kind not in ("point", "orientedPoint"):
            raise DeepETPickerError(
                f"{path}, line {lineno}: 'type' is {kind!r}; point annotations have type "
                f"'point' or 'orientedPoint' (segmentations cannot be read as picks).")
        locations.append(_location(path, f"line {lineno}", point))
    return object_file_picks(path.stem, locations, ids, geometry)


@writes("copick")
def _write_copick(tables, out_dir, geometry, class_names) -> list[Path]:
    voxels = {t.tomo_name: require_voxel("copick", t.tomo_name,
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


@writes("ndjson")
def _write_ndjson(tables, out_dir, geometry, class_names) -> list[Path]:
    return write_object_files(tables, out_dir, class_names, ".ndjson", lambda xyz: json.dumps(
        {"type": "point", "location": {"x": float(xyz[0]), "y": float(xyz[1]),
                                       "z": float(xyz[2])}}))
