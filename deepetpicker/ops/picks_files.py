"""One tomogram's picks from any pick file, and written in another program's format: what the
viewer's Open and Save As do with files, kept apart from the widgets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import PICK_SUFFIXES, Picks, check_in_bounds, read_picks
from deepetpicker.types import PathLike


def read_pick_file(path: PathLike, shape: Optional[Sequence[int]] = None,
                   tomo_name: str = "", voxel_size: Optional[float] = None) -> Picks:
    """One tomogram's picks from any supported file; for a multi-tomogram file (STAR,
    copick), the table named like ``tomo_name``, else the only one.

    ``shape`` (z, y, x) and ``voxel_size`` (Angstrom) are the open tomogram's: picks outside
    it are an error, and formats that need them (RELION 5's Angstrom from the centre, RELION
    4's binning, copick without a voxel spacing) read back to the same voxel positions.
    """
    path = Path(path)
    if path.suffix.lower() in PICK_SUFFIXES:
        return read_picks(path, shape=shape)
    from deepetpicker.io.formats import read_any

    tables = read_any(path, shape=tuple(shape) if shape is not None else None,
                      voxel_size=voxel_size or None, only=tomo_name)
    if not tables:
        raise DeepETPickerError(f"{path} holds no picks.")
    picks = tables[0]
    if shape is not None:
        check_in_bounds(picks.xyz, shape, path)
    return picks


def export_picks(picks: Picks, fmt: str, out_dir: PathLike,
                 shape: Optional[Sequence[int]] = None,
                 chosen: Optional[PathLike] = None) -> list[Path]:
    """Write one tomogram's picks in another program's format ``fmt`` under ``out_dir``.

    ``chosen`` is the file the user picked in the save dialog (which asked before replacing
    it). Formats that write one table file (RELION, Dynamo: see
    :attr:`~deepetpicker.io.format_specs.FormatSpec.one_table_file`) write exactly that file
    (Dynamo also its table map ``<stem>.doc`` beside it); the others write their own file
    names (as :func:`deepetpicker.io.formats.write_format` gives them) into its folder.

    Earlier exports of the same names are replaced; any other file in the way (one the user
    made, or an export edited since) is refused before anything is written, except
    ``chosen``.
    """
    from deepetpicker.io.format_specs import format_spec
    from deepetpicker.io.formats import write_format
    from deepetpicker.io.outputs import OutputGuard

    file_name = None
    if chosen is not None and format_spec(fmt).one_table_file:
        out_dir, file_name = Path(chosen).parent, Path(chosen).name
    guard = OutputGuard(out_dir, overwrite=True, option="folder (Save As)")

    def write(folder):
        return write_format([picks], fmt, folder, voxel_size=picks.voxel_size,
                            shapes=tuple(shape) if shape is not None else None,
                            file_name=file_name)

    planned = [guard.folder / p for p in guard.files_written_by(write)]
    if chosen is not None:
        guard.allow([chosen])
    guard.check(planned)
    written = [Path(p) for p in write(guard.folder)]
    guard.record(written)
    return written
