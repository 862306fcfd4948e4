"""One tomogram's picks from any pick file, and written in another program's format: what the
viewer's Open and Save As do with files, kept apart from the widgets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import PICK_SUFFIXES, Picks, check_in_bounds, read_picks
from deepetpicker.types import PathLike


def read_pick_file(path: PathLike, shape: Optional[Sequence[int]] = None,
                   tomo_name: str = "") -> Picks:
    """One tomogram's picks from any supported file; for a multi-tomogram file (STAR,
    copick), the table named like ``tomo_name``, else the only one."""
    path = Path(path)
    if path.suffix.lower() in PICK_SUFFIXES:
        return read_picks(path, shape=shape)
    from deepetpicker.io.formats import read_any

    tables = read_any(path)
    if not tables:
        raise DeepETPickerError(f"{path} holds no picks.")
    if len(tables) == 1:
        picks = tables[0]
    else:
        named = [t for t in tables if t.tomo_name == tomo_name]
        if not named:
            names = ", ".join(sorted({t.tomo_name for t in tables}))
            raise DeepETPickerError(
                f"{path} holds picks of several tomograms ({names}) and none is named "
                f"{tomo_name!r}. Open the tomogram the picks belong to, or convert the file "
                f"with `deepetpicker convert`.")
        picks = named[0]
    if shape is not None:
        check_in_bounds(picks.xyz, shape, path)
    return picks


def export_picks(picks: Picks, fmt: str, out_dir: PathLike,
                 shape: Optional[Sequence[int]] = None,
                 chosen: Optional[PathLike] = None) -> list[Path]:
    """Write one tomogram's picks in another program's format ``fmt`` under ``out_dir``
    (file names as :func:`deepetpicker.io.formats.write_format` gives them).

    Earlier exports are replaced; any other file in the way (one the user made, or an
    export edited since) is refused before anything is written, except ``chosen``, the file
    the user picked in the save dialog (which asked before replacing it).
    """
    from deepetpicker.io.formats import write_format
    from deepetpicker.io.outputs import OutputGuard

    guard = OutputGuard(out_dir, overwrite=True, option="folder (Save As)")

    def write(folder):
        return write_format([picks], fmt, folder, voxel_size=picks.voxel_size,
                            shapes=tuple(shape) if shape is not None else None)

    planned = [guard.folder / p for p in guard.files_written_by(write)]
    if chosen is not None:
        guard.allow([chosen])
    guard.check(planned)
    written = [Path(p) for p in write(guard.folder)]
    guard.record(written)
    return written

