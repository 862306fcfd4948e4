"""Converting pick files between formats (the ``deepetpicker convert`` command).

Reading and writing each format is :mod:`deepetpicker.io.formats`; this module adds what a
conversion needs around it: finding the pick files in folders, the shapes and voxel sizes of
the tomograms given, and the output guard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import format_spec, pick_file_suffixes
from deepetpicker.io.formats import (
    RELION_TOMO_FORMATS,
    check_export,
    detect_format,
    read_any,
    tomo_names,
    write_format,
)
from deepetpicker.io.formats.geometry import Geometry, ShapeSpec, VoxelSpec
from deepetpicker.io.formats.names import ClassIds, TomoNames, TomoNameSpec
from deepetpicker.io.outputs import OutputGuard, file_stamp
from deepetpicker.io.picks import Picks
from deepetpicker.io.tomogram import find_tomograms, load_tomogram
from deepetpicker.types import PathLike


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
    shapes, voxels, paths = {}, {}, {}
    for item in tomograms:
        for path in find_tomograms(item):
            tomo = load_tomogram(path, mmap=True)
            shapes[path.stem] = tomo.shape
            paths[path.stem] = str(path)
            if tomo.voxel_size:
                voxels[path.stem] = tomo.voxel_size
    return shapes, voxels, paths


def _check_tomo_name_use(names: Optional[TomoNames], fmt: str, files: Sequence[Path]) -> None:
    """--tomo-name only means something when a RELION 4/5 file is read or written."""
    if names is not None and fmt not in RELION_TOMO_FORMATS \
            and not any(detect_format(f) in RELION_TOMO_FORMATS for f in files if f.exists()):
        raise DeepETPickerError(
            f"--tomo-name sets rlnTomoName of RELION 4/5 files, but neither the output format "
            f"{fmt!r} nor any input file is one. Leave it out, or convert --to relion4/relion5.")


def _check_tomograms_found(tables: Sequence[Picks], tomo_paths: dict) -> None:
    """With tomograms given, every table must find the tomogram named like it."""
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


def _of_class(tables: Sequence[Picks], class_id: int, files: Sequence[Path]) -> list[Picks]:
    """The picks of class ``class_id`` only; none at all is an error."""
    found = sorted({int(c) for t in tables for c in t.classes})
    tables = [t.of_class(class_id) for t in tables if np.any(t.classes == class_id)]
    if not tables:
        raise DeepETPickerError(
            f"No picks of class {class_id} in {', '.join(str(f) for f in files)}; the "
            f"classes present are {found or 'none'}.")
    return tables


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
    check_export(fmt, class_names, binning, tilt_series_pixel_size, tomo_name)
    names = tomo_names(tomo_name)
    files = _expand_inputs(paths)
    if not files:
        raise DeepETPickerError("No pick files given to convert.")
    guard = OutputGuard(out_dir, overwrite=overwrite, inputs=[*files, *(tomograms or ())])
    _check_tomo_name_use(names, fmt, files)
    tomo_shapes, tomo_voxels, tomo_paths = _tomogram_geometry(tomograms or ())
    if tomograms and not tomo_paths:
        raise DeepETPickerError(
            f"No tomograms (.mrc, .rec, ...) found in --tomogram "
            f"{' '.join(str(t) for t in tomograms)}.")
    shape_spec: ShapeSpec = shapes if shapes is not None else (tomo_shapes or None)
    voxel_spec: VoxelSpec = voxel_size if voxel_size is not None else (tomo_voxels or None)
    names_found: list = list(class_names or [])
    ids = ClassIds(names_found)
    tables: list[Picks] = []
    for path in files:
        tables += read_any(path, shape=shape_spec, voxel_size=voxel_spec, class_names=ids,
                           binning=binning, tilt_series_pixel_size=tilt_series_pixel_size,
                           tomo_name=names, tomograms=tomo_paths)
    _check_tomograms_found(tables, tomo_paths)
    for table in tables:
        if table.voxel_size is None:
            table.voxel_size = Geometry(None, voxel_spec).voxel(table.tomo_name)
    if class_id is not None:
        tables = _of_class(tables, class_id, files)

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

