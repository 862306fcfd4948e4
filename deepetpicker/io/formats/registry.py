"""The registry of readers and writers, and reading and writing any format through it.

Each format's module registers its reader and writer under the format's name with
:func:`reads` and :func:`writes`; :func:`read_any` and :func:`write_format` look them up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import (
    FORMAT_SPECS,
    FormatSpec,
    describe_suffixes,
    format_names,
    format_spec,
    recognise_format,
)
from deepetpicker.io.formats.geometry import Geometry, Shape, ShapeSpec, VoxelSpec, positive
from deepetpicker.io.formats.names import ClassIds, TomoNameSpec, check_class_names, tomo_names
from deepetpicker.io.formats.text import read_text
from deepetpicker.io.picks import Picks, check_in_bounds
from deepetpicker.types import PathLike

FORMATS = format_names()
FORMAT_HELP = {spec.name: spec.help for spec in FORMAT_SPECS}
RELION_TOMO_FORMATS = format_names(lambda spec: spec.relion_tomo)

#: format name -> reader(path, geometry, class ids, num_cls) -> one table per tomogram; the
#: tables' classes and bounds are checked by read_any
READERS: dict[str, Callable[..., list[Picks]]] = {}
#: format name -> writer(tables, out_dir, geometry, class_names) -> the files written
WRITERS: dict[str, Callable[..., list[Path]]] = {}


def reads(*names: str) -> Callable:
    """Register the decorated function as the reader of the formats ``names``."""
    def register(function: Callable) -> Callable:
        for name in names:
            READERS[format_spec(name).name] = function
        return function
    return register


def writes(name: str) -> Callable:
    """Register the decorated function as the writer of format ``name``."""
    def register(function: Callable) -> Callable:
        WRITERS[format_spec(name).name] = function
        return function
    return register


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def detect_format(path: PathLike) -> str:
    """The format of a pick file, from its extension (and the labels of a STAR file)."""
    path = Path(path)
    spec = recognise_format(path.suffix, lambda: read_text(path))
    if spec is None:
        raise DeepETPickerError(
            f"Cannot tell the format of {path} from its extension {path.suffix!r}. Pick files "
            f"are {describe_suffixes()}.")
    return spec.name


def read_any(path: PathLike, shape: ShapeSpec = None, voxel_size: VoxelSpec = None,
             num_cls: Optional[int] = None, class_names: Optional[Sequence[str]] = None, *,
             binning: Optional[float] = None, tilt_series_pixel_size: Optional[float] = None,
             tomo_name: TomoNameSpec = None,
             tomograms: Optional[Mapping[str, PathLike]] = None,
             only: Optional[str] = None) -> list[Picks]:
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
    ``only`` reads one tomogram's table: the one of that name, or the only one a file holds
    (then ``shape`` and ``voxel_size`` apply to it whatever its name); a file of several
    tomograms, none of them ``only``, is an error naming them.
    Each table's ``meta`` holds ``format`` and ``source`` (and ``object``, ``binning``,
    ``tilt_series_pixel_size`` where the format has them).
    """
    path = Path(path)
    if not path.exists():
        raise DeepETPickerError(f"Pick file not found: {path}")
    if path.is_dir():
        raise DeepETPickerError(f"{path} is a folder; give the pick files inside it.")
    fmt = detect_format(path)
    geometry = Geometry(shape, voxel_size, positive(binning, "Binning"),
                        positive(tilt_series_pixel_size, "Tilt-series pixel size"),
                        tomo_names(tomo_name), {k: str(v) for k, v in (tomograms or {}).items()},
                        only)
    ids = class_names if isinstance(class_names, ClassIds) else ClassIds(class_names)
    tables = READERS[fmt](path, geometry, ids, num_cls)
    if only is not None:
        keep = set(geometry.selected([t.tomo_name for t in tables], str(path)))
        tables = [t for t in tables if t.tomo_name in keep]
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
    positive(binning, "Binning")
    positive(tilt_series_pixel_size, "Tilt-series pixel size")
    tomo_names(tomo_name)


def write_format(picks_list: Union[Picks, Sequence[Picks]], fmt: str, out_dir: PathLike,
                 voxel_size: VoxelSpec = None, shapes: ShapeSpec = None,
                 class_names: Optional[Sequence[str]] = None, *,
                 binning: Optional[float] = None,
                 tilt_series_pixel_size: Optional[float] = None,
                 tomo_name: TomoNameSpec = None,
                 file_name: Optional[str] = None) -> list[Path]:
    """Write tables (one per tomogram) in format ``fmt`` under ``out_dir``; returns the files.

    Tables with the same tomogram name are merged. ``voxel_size`` (Angstrom; or a mapping
    from tomogram name) defaults to each table's own voxel size and is needed by copick and
    RELION 5; ``shapes`` ((z, y, x) for all, a list in table order, or a mapping from name)
    is needed by RELION 5. ``class_names`` names the objects of box, copick and ndjson files
    (copick refuses some names, see :func:`copick_name_problem`). RELION 4 coordinates are
    multiplied by the binning (``binning``, or the voxel size over ``tilt_series_pixel_size``
    or the table's own, see :func:`relion4_binning`). ``tomo_name`` sets rlnTomoName for
    RELION 4/5 (see :func:`tomo_names`). ``file_name`` (a name inside ``out_dir``) replaces
    the format's own file name for the formats that write every tomogram into one table file
    (RELION 3/4/5 and Dynamo, whose table map becomes ``<stem>.doc``); other formats refuse
    it. Every file is written atomically.
    """
    spec = format_spec(fmt)
    check_class_names(class_names, fmt)
    extra = {}
    if file_name is not None:
        extra["file_name"] = check_file_name(fmt, file_name)
    tables = _merge_by_tomogram([picks_list] if isinstance(picks_list, Picks) else picks_list)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geometry = Geometry(shapes, voxel_size, positive(binning, "Binning"),
                        positive(tilt_series_pixel_size, "Tilt-series pixel size"),
                        tomo_names(tomo_name))
    return WRITERS[spec.name](tables, out_dir, geometry, class_names, **extra)


def check_file_name(fmt: str, file_name: str) -> str:
    """``file_name`` when format ``fmt`` can write its picks under that name: a format that
    writes one table file, and a plain file name with one of the format's suffixes."""
    spec = format_spec(fmt)
    name = str(file_name)
    if not spec.one_table_file:
        raise DeepETPickerError(
            f"The {spec.label} format ({fmt}) writes its own file names "
            f"({FormatSpec.plain(spec.files)}), so it cannot be written as {name!r}. Choose "
            f"a folder for it instead, or a format that writes one file "
            f"({', '.join(format_names(lambda s: s.one_table_file))}).")
    if not name or Path(name).name != name or name in (".", ".."):
        raise DeepETPickerError(
            f"{name!r} is not a file name; give the name of the {spec.label} file without "
            f"its folder, e.g. particles{spec.suffix}.")
    if Path(name).suffix.lower() not in spec.suffixes:
        raise DeepETPickerError(
            f"A {spec.label} file ends in {' or '.join(spec.suffixes)}, not "
            f"{Path(name).suffix or 'no suffix'} ({name}); name it "
            f"{Path(name).stem}{spec.suffix}.")
    return name


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
