"""Dynamo tables (``.tbl``) with their table maps (``.doc``).

Dynamo is MATLAB and counts voxels from 1; copick's Dynamo reader takes the positions as
0-based (no shift), so a .tbl read by copick lands one voxel off. Of a Dynamo table's columns
1 is the tag, 10 the cc (score), 20 the tomogram index, 22 the class and 24-26 x y z.
Scores travel in the cc column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import write_text_atomic
from deepetpicker.io.formats.conventions import from_one_based, to_one_based
from deepetpicker.io.formats.geometry import Geometry
from deepetpicker.io.formats.names import ClassIds
from deepetpicker.io.formats.registry import reads, writes
from deepetpicker.io.formats.text import read_text, row_numbers
from deepetpicker.io.picks import Picks, format_number

# Dynamo table columns (1-based, as in the Dynamo table convention)
_TBL_COLUMNS = 35
_TBL_TAG, _TBL_ALIGNED, _TBL_CC, _TBL_TOMO, _TBL_CLASS = 1, 2, 10, 20, 22
_TBL_SHIFT = (4, 5, 6)
_TBL_XYZ = (24, 25, 26)
# The columns read back (others, e.g. a complex-valued daxis, are left alone).
_TBL_READ = (_TBL_CC, _TBL_TOMO, _TBL_CLASS) + _TBL_SHIFT + _TBL_XYZ


@reads("tbl")
def _read_tbl(path: Path, geometry: Geometry, ids: ClassIds,
              num_cls: Optional[int]) -> list[Picks]:
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < _TBL_XYZ[-1]:
            raise DeepETPickerError(
                f"{path}, line {lineno}: {len(tokens)} columns; a Dynamo table row has at least "
                f"{_TBL_XYZ[-1]} (x y z are columns 24-26).")
        rows.append(row_numbers(path, lineno, [tokens[c - 1] for c in _TBL_READ], "table",
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
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        tokens = line.split(maxsplit=1)
        if not tokens:
            continue
        if len(tokens) != 2 or not tokens[0].lstrip("-").isdigit():
            raise DeepETPickerError(
                f"{path}, line {lineno}: expected 'index tomogram_path' (a Dynamo table map), "
                f"got {line.strip()!r}.")
        names[int(tokens[0])] = Path(tokens[1].strip()).stem
    return names


@writes("tbl")
def _write_tbl(tables, out_dir, geometry, class_names, file_name=None) -> list[Path]:
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
    table_path = out_dir / (file_name or "particles.tbl")
    map_path = table_path.with_suffix(".doc")  # the table map: index -> tomogram
    write_text_atomic(table_path, "".join(line + "\n" for line in lines))
    write_text_atomic(map_path, "".join(f"{i} {t.tomo_name}.mrc\n"
                                        for i, t in enumerate(tables, start=1)))
    return [table_path, map_path]
