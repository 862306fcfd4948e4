"""The one pick table of the project.

A pick is a row ``(class, x, y, z, score)``: 0-based voxel coordinates (sub-voxel floats
allowed), class ids 1-based (0 is background), and an optional confidence score. A table also
knows the tomogram it belongs to and, when known, the voxel size in Angstrom. Conversions to
other programs' conventions (1-based, centred, Angstrom) live in :mod:`deepetpicker.io.formats`
and nowhere else.

Tables are stored as text: :func:`write_picks` writes the original program's ``.coords``
layout (tab-separated ``class x y z [score]``) or a ``.csv`` with a header, and
:func:`read_picks` reads those and the looser files users write by hand.

Predicted picks come with a sidecar, ``<picks file name>.json`` (:func:`sidecar_path`), that
records every setting that made them: :func:`write_sidecar` writes it, :func:`read_sidecar`
reads it back and :func:`sidecar_diameters` gives the particle diameter of each class.
Writing a table over picks that have a sidecar keeps its counts true (:func:`refresh_sidecar`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import write_text_atomic
from deepetpicker.io.format_specs import PICK_SUFFIXES
from deepetpicker.types import PathLike

#: The sidecar of ``name.coords`` is ``name.coords.json``.
SIDECAR_SUFFIX = ".json"


@dataclass
class Picks:
    """Particle picks of one tomogram.

    ``classes``: (N,) int64, 1-based. ``xyz``: (N, 3) float64, 0-based voxels, columns x, y, z.
    ``scores``: (N,) float64 or None when the source had no scores.
    """

    classes: np.ndarray
    xyz: np.ndarray
    scores: Optional[np.ndarray] = None
    tomo_name: str = ""
    voxel_size: Optional[float] = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyz = np.asarray(self.xyz, dtype=np.float64).reshape(-1, 3)
        self.classes = np.asarray(self.classes, dtype=np.int64).reshape(-1)
        if self.classes.size == 1 and len(self.xyz) != 1:
            self.classes = np.full(len(self.xyz), int(self.classes[0]), dtype=np.int64)
        if len(self.classes) != len(self.xyz):
            raise ValueError(f"{len(self.classes)} classes for {len(self.xyz)} coordinates")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
            if len(self.scores) != len(self.xyz):
                raise ValueError(f"{len(self.scores)} scores for {len(self.xyz)} coordinates")

    # construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls, tomo_name: str = "", voxel_size: Optional[float] = None,
              with_scores: bool = False) -> "Picks":
        return cls(np.zeros(0, np.int64), np.zeros((0, 3)),
                   np.zeros(0) if with_scores else None, tomo_name, voxel_size)

    @classmethod
    def from_array(cls, rows: np.ndarray, tomo_name: str = "",
                   voxel_size: Optional[float] = None) -> "Picks":
        """From an (N, 4) ``class x y z`` or (N, 5) ``class x y z score`` array."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] not in (4, 5):
            rows = rows.reshape(-1, rows.shape[-1] if rows.ndim else 4)
            if rows.shape[1] not in (4, 5):
                raise ValueError(f"expected 4 or 5 columns, got {rows.shape[1]}")
        scores = rows[:, 4] if rows.shape[1] == 5 else None
        return cls(np.rint(rows[:, 0]).astype(np.int64), rows[:, 1:4], scores,
                   tomo_name, voxel_size)

    @classmethod
    def concat(cls, tables: Sequence["Picks"]) -> "Picks":
        """Join tables of the same tomogram (scores kept only if every table has them)."""
        if not tables:
            return cls.empty()
        first = tables[0]
        has_scores = all(t.scores is not None for t in tables)
        return cls(np.concatenate([t.classes for t in tables]),
                   np.concatenate([t.xyz for t in tables]),
                   np.concatenate([t.scores for t in tables]) if has_scores else None,
                   first.tomo_name, first.voxel_size, dict(first.meta))

    # views --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyz)

    @property
    def zyx(self) -> np.ndarray:
        """Coordinates as (N, 3) ``z, y, x`` for indexing ``(z, y, x)`` arrays."""
        return self.xyz[:, ::-1]

    @property
    def has_scores(self) -> bool:
        return self.scores is not None

    def as_array(self) -> np.ndarray:
        """(N, 5) ``class x y z score`` (score NaN where absent)."""
        scores = self.scores if self.scores is not None else np.full(len(self), np.nan)
        return np.column_stack([self.classes.astype(np.float64), self.xyz, scores])

    def select(self, mask_or_index: np.ndarray) -> "Picks":
        """A new table with the rows picked by a boolean mask or an index array; per-pick
        arrays in ``meta`` (numpy arrays with one value per row) follow their rows."""
        meta = {key: value[mask_or_index]
                if isinstance(value, np.ndarray) and len(value) == len(self) else value
                for key, value in self.meta.items()}
        return Picks(self.classes[mask_or_index], self.xyz[mask_or_index],
                     None if self.scores is None else self.scores[mask_or_index],
                     self.tomo_name, self.voxel_size, meta)

    def of_class(self, cls_id: int) -> "Picks":
        return self.select(self.classes == cls_id)

    def copy(self) -> "Picks":
        return self.select(np.arange(len(self)))

    def counts(self, num_cls: Optional[int] = None) -> dict[int, int]:
        """Number of picks per class id (every id 1..num_cls present when given)."""
        ids = range(1, num_cls + 1) if num_cls else sorted(set(self.classes.tolist()))
        return {int(c): int(np.sum(self.classes == c)) for c in ids}


# --------------------------------------------------------------------------------------------
# Plain text tables: .coords, .txt, .csv
# --------------------------------------------------------------------------------------------
_COLUMN_ALIASES = {
    "class": "class", "cls": "class", "class_id": "class", "classid": "class", "label": "class",
    "x": "x", "y": "y", "z": "z",
    "score": "score", "scores": "score", "confidence": "score", "prob": "score",
    "probability": "score",
}
_POSITIONAL = {3: ("x", "y", "z"), 4: ("class", "x", "y", "z"),
               5: ("class", "x", "y", "z", "score")}
_SPLIT = re.compile(r"\s*,\s*|\s+")
# A coordinate may lie this far (in voxels) outside [0, n - 1] and still count as inside.
BOUNDS_TOLERANCE = 0.5


def _fields(line: str) -> list[str]:
    text = line.split("#", 1)[0].strip().strip(",").strip()
    return _SPLIT.split(text) if text else []


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_numbers(path: PathLike, lineno: int, tokens: Sequence[str],
                  labels: Sequence[str]) -> list[float]:
    """Parse the tokens of one text line as finite floats; ``labels`` name their columns in
    the error (e.g. ``"column 'x'"``), which also gives the file and the line."""
    values = []
    for label, token in zip(labels, tokens):
        try:
            value = float(token)
        except ValueError:
            raise DeepETPickerError(
                f"{path}, line {lineno}: {label} is {token!r}, not a number.") from None
        if not np.isfinite(value):
            raise DeepETPickerError(
                f"{path}, line {lineno}: {label} is {token!r}; coordinates, classes and "
                f"scores must be finite numbers.")
        values.append(value)
    return values


def read_picks(path: PathLike, shape: Optional[Sequence[int]] = None,
               num_cls: Optional[int] = None, tomo_name: Optional[str] = None,
               voxel_size: Optional[float] = None) -> Picks:
    """Read a ``.coords`` / ``.txt`` / ``.csv`` pick table.

    Rows are ``x y z`` (class 1), ``class x y z`` or ``class x y z score``, separated by tabs,
    spaces or commas. A header line naming the columns (``class,x,y,z`` or ``x y z``) and
    ``#`` comments are allowed; an empty file is an empty table. With ``shape`` (z, y, x)
    every coordinate must lie inside the tomogram (0-based, 0.5 voxel tolerance); with
    ``num_cls`` every class id must be at most ``num_cls``. ``tomo_name`` defaults to the file
    stem. Raises :class:`DeepETPickerError` naming the file and line of the first bad value.
    """
    path = Path(path)
    if not path.exists():
        raise DeepETPickerError(f"Pick file not found: {path}")
    if path.is_dir():
        raise DeepETPickerError(f"{path} is a folder, not a pick file (.coords, .txt, .csv)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeepETPickerError(
            f"{path} is not a text pick table (byte {exc.start} is not UTF-8 text). Pick "
            f"files hold rows 'class x y z [score]' as plain text.") from exc
    names: Optional[tuple[str, ...]] = None
    rows: list[list[float]] = []
    line_of: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = _fields(line)
        if not tokens:
            continue
        if names is None and not rows and not any(_is_number(t) for t in tokens):
            names = _header_columns(path, lineno, tokens)
            continue
        if names is None:
            if len(tokens) not in _POSITIONAL:
                raise DeepETPickerError(
                    f"{path}, line {lineno}: {len(tokens)} columns ({line.strip()!r}). "
                    f"Expected 3 (x y z), 4 (class x y z) or 5 (class x y z score).")
            names = _POSITIONAL[len(tokens)]
        if len(tokens) != len(names):
            raise DeepETPickerError(
                f"{path}, line {lineno}: {len(tokens)} columns but earlier rows have "
                f"{len(names)} ({' '.join(names)}). Every row needs the same columns.")
        rows.append(parse_numbers(path, lineno, tokens, [f"column '{c}'" for c in names]))
        line_of.append(lineno)
    names = names or ("class", "x", "y", "z")
    table = np.array(rows, dtype=np.float64).reshape(-1, len(names))
    column = {n: table[:, i] for i, n in enumerate(names)}
    classes = column.get("class", np.ones(len(table)))
    _check_classes(path, classes, line_of, num_cls)
    xyz = np.column_stack([column["x"], column["y"], column["z"]])
    if shape is not None:
        check_in_bounds(xyz, shape, path, line_of)
    return Picks(np.rint(classes).astype(np.int64), xyz, column.get("score"),
                 tomo_name if tomo_name is not None else path.stem, voxel_size,
                 {"source": str(path)})


def _header_columns(path: Path, lineno: int, tokens: list[str]) -> tuple[str, ...]:
    names = []
    for token in tokens:
        key = _COLUMN_ALIASES.get(token.strip("\"'").lower().lstrip("_"))
        if key is None:
            raise DeepETPickerError(
                f"{path}, line {lineno}: unknown column name {token!r} in the header. "
                f"Name the columns class, x, y, z, score (class and score optional) or remove "
                f"the header line.")
        if key in names:
            raise DeepETPickerError(f"{path}, line {lineno}: column {token!r} appears twice.")
        names.append(key)
    missing = [c for c in ("x", "y", "z") if c not in names]
    if missing:
        raise DeepETPickerError(
            f"{path}, line {lineno}: the header has no column {', '.join(missing)}; a pick "
            f"table needs x, y and z.")
    return tuple(names)


def _check_classes(path: Path, classes: np.ndarray, line_of: list[int],
                   num_cls: Optional[int]) -> None:
    for i, value in enumerate(classes):
        where = f"{path}, line {line_of[i]}" if i < len(line_of) else f"{path}, row {i + 1}"
        if abs(value - round(value)) > 1e-6:
            raise DeepETPickerError(
                f"{where}: class {value:g} is not a whole number. Class ids are 1, 2, ...; a "
                f"4-column row is 'class x y z' (3 columns 'x y z' mean class 1).")
        if value < 1:
            raise DeepETPickerError(
                f"{where}: class {value:g} is not allowed; class ids start at 1 (0 is the "
                f"background). Renumber the classes from 1.")
        if num_cls is not None and value > num_cls:
            raise DeepETPickerError(
                f"{where}: class {value:g} but the dataset has {num_cls} class(es). Fix the "
                f"class column or raise num_cls.")


def check_in_bounds(xyz: np.ndarray, shape: Sequence[int], source: PathLike = "",
                    line_of: Optional[Sequence[int]] = None,
                    tolerance: float = BOUNDS_TOLERANCE) -> None:
    """Raise if a 0-based coordinate lies outside a tomogram of ``shape`` (z, y, x).

    A coordinate is inside when ``-tolerance <= c <= n - 1 + tolerance``. The message names
    ``source`` and the line (``line_of[i]``) or row of the first coordinate outside.
    """
    if len(shape) != 3:
        raise ValueError(f"shape must be (z, y, x), got {tuple(shape)}")
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    upper = np.array([shape[2], shape[1], shape[0]], dtype=np.float64) - 1 + tolerance
    bad = np.nonzero(((xyz < -tolerance) | (xyz > upper)).any(axis=1))[0]
    if len(bad):
        i = int(bad[0])
        where = (f"line {line_of[i]}" if line_of is not None and i < len(line_of)
                 else f"row {i + 1}")
        x, y, z = xyz[i]
        nz, ny, nx = (int(s) for s in shape)
        raise DeepETPickerError(
            f"{source}, {where}: pick at x={x:g}, y={y:g}, z={z:g} lies outside the tomogram "
            f"(x 0..{nx - 1}, y 0..{ny - 1}, z 0..{nz - 1}; {len(bad)} pick(s) outside). "
            f"Check the column order (class x y z), that coordinates are 0-based voxels of "
            f"this tomogram (not Angstrom, not another binning) and that the file belongs to "
            f"this tomogram.")


def format_number(value: float) -> str:
    """A table cell: whole numbers as integers (``12``), others with 9 significant digits."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".9g")


def write_picks(path: PathLike, picks: Picks) -> Path:
    """Write a pick table atomically; returns the path.

    ``.coords`` and ``.txt``: the original program's layout, tab-separated ``class x y z``
    rows plus a 5th ``score`` column when the table has scores, no header. ``.csv``: the same
    columns separated by commas under a ``class,x,y,z[,score]`` header.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PICK_SUFFIXES:
        raise DeepETPickerError(
            f"Cannot write picks to {path}: unknown suffix {path.suffix!r}. Use .coords, .txt "
            f"or .csv (other programs' formats: deepetpicker.io.formats.write_format).")
    if not np.isfinite(picks.xyz).all():
        raise DeepETPickerError(f"Cannot write {path}: the picks hold NaN or Inf coordinates.")
    columns = [picks.classes, picks.xyz[:, 0], picks.xyz[:, 1], picks.xyz[:, 2]]
    names = ["class", "x", "y", "z"]
    if picks.scores is not None:
        columns.append(picks.scores)
        names.append("score")
    sep = "," if suffix == ".csv" else "\t"
    lines = [sep.join(names)] if suffix == ".csv" else []
    for row in zip(*columns):
        lines.append(sep.join(format_number(v) for v in row))
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    if sidecar_path(path).is_file():
        refresh_sidecar(path, picks)
    return path


def sidecar_path(picks_path: PathLike) -> Path:
    """The sidecar file of a pick table: its name with ``.json`` added."""
    picks_path = Path(picks_path)
    return picks_path.with_name(picks_path.name + SIDECAR_SUFFIX)


def write_sidecar(picks_path: PathLike, record: dict) -> Path:
    """Write ``record`` (JSON values) as the sidecar of ``picks_path`` (atomically)."""
    path = sidecar_path(picks_path)
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    return path


def read_sidecar(picks_path: PathLike) -> Optional[dict]:
    """The record in the sidecar of ``picks_path``; None when there is none or it cannot be
    read as a JSON object (say, a file of another program)."""
    try:
        record = json.loads(sidecar_path(picks_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def refresh_sidecar(picks_path: PathLike, picks: Picks) -> Optional[Path]:
    """Keep the sidecar of ``picks_path`` true to ``picks``, the table now written there
    (say, predicted picks corrected by hand and saved over the prediction): its ``counts``
    become those of ``picks``, each pick's ``class_confidence`` goes when the picks are no
    longer the ones it was given for, and ``edited`` is set. The settings that made the
    picks stay. Returns the sidecar when it was rewritten; None when there is none, it
    describes another file, or it already agrees."""
    picks_path = Path(picks_path)
    record = read_sidecar(picks_path)
    if record is None or record.get("picks", picks_path.name) != picks_path.name:
        return None
    old = record.get("counts")
    known = [int(k) for k in old if str(k).isdigit()] if isinstance(old, dict) else []
    classes = [int(c) for c in np.unique(picks.classes)] if len(picks) else []
    num_cls = max(known + classes + [0])
    counts = {str(c): n for c, n in picks.counts(num_cls).items()} if num_cls else {}
    confidence = record.get("class_confidence")
    stale = isinstance(confidence, list) and (len(confidence) != len(picks) or old != counts)
    if old == counts and not stale:
        return None
    record["counts"] = counts
    if stale:
        del record["class_confidence"]
    record["edited"] = True
    return write_sidecar(picks_path, record)


def sidecar_diameters(picks_path: PathLike) -> list[float]:
    """The particle diameter of each class (voxels; class 1 first) that made the predicted
    picks ``picks_path``, from its sidecar; empty when the sidecar does not say."""
    record = read_sidecar(picks_path) or {}
    try:
        return [float(d) for d in record.get("diameters") or []]
    except (TypeError, ValueError):
        return []
