"""DeepETPicker's own tables (``.coords``) and EMAN2 3-D box files.

EMAN2's boxer writes whole voxels and truncates what it reads to whole voxels; the box files
written here keep sub-voxel values so that they read back exactly. Box files hold one object
each and no score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.formats.geometry import Geometry, object_file_picks
from deepetpicker.io.formats.names import ClassIds, write_object_files
from deepetpicker.io.formats.registry import reads, writes
from deepetpicker.io.formats.text import read_text, row_numbers
from deepetpicker.io.picks import Picks, format_number, read_picks, write_picks


@reads("coords")
def _read_coords(path: Path, geometry: Geometry, ids: ClassIds,
                 num_cls: Optional[int]) -> list[Picks]:
    name = path.stem
    return [read_picks(path, shape=geometry.shape(name), num_cls=num_cls,
                       voxel_size=geometry.voxel(name))]


@reads("box")
def _read_box(path: Path, geometry: Geometry, ids: ClassIds,
              num_cls: Optional[int]) -> list[Picks]:
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) != 3:
            hint = (" A 4-column .box is a 2-D EMAN box (x y width height) of a micrograph, "
                    "not a tomogram." if len(tokens) == 4 else "")
            raise DeepETPickerError(
                f"{path}, line {lineno}: {len(tokens)} columns; an EMAN2 3-D box file has 3 "
                f"(x y z particle centres).{hint}")
        rows.append(row_numbers(path, lineno, tokens, "box"))
    return object_file_picks(path.stem, rows, ids, geometry)


@writes("coords")
def _write_coords(tables, out_dir, geometry, class_names) -> list[Path]:
    return [write_picks(out_dir / f"{t.tomo_name}.coords", t) for t in tables]


@writes("box")
def _write_box(tables, out_dir, geometry, class_names) -> list[Path]:
    return write_object_files(tables, out_dir, class_names, ".box",
                              lambda xyz: "\t".join(format_number(v) for v in xyz))
