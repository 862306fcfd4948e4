"""The pick formats DeepETPicker reads and writes: one :class:`FormatSpec` per format.

Everything that names or describes a format comes from :data:`FORMAT_SPECS`: the command
line's choices and its format table (``deepetpicker convert --help``), the GUI's file dialogs
and export choices, which format a file suffix means (:func:`formats_for_suffix`, used by
:func:`deepetpicker.io.formats.detect_format`), the plain table suffixes of a dataset
(:data:`deepetpicker.io.dataset.PICK_SUFFIXES`) and the table of formats in
docs/formats.md (:func:`format_table_markdown`; a test keeps that page equal to it).

The readers and writers themselves live in :mod:`deepetpicker.io.formats` and register there
under these names. This module imports nothing heavy, so the command line can build its help
from it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from deepetpicker.errors import DeepETPickerError

#: STAR labels that tell RELION's three particle files apart (RELION's own names).
RELION_TOMO_NAME = "rlnTomoName"
RELION_CENTRED_X = "rlnCenteredCoordinateXAngst"


@dataclass(frozen=True)
class FormatSpec:
    """What DeepETPicker knows about one pick format.

    Text fields marked *markdown* go into docs/formats.md's table as they are; the command line
    shows them without the markup (:meth:`plain`).
    """

    #: the name users type (``--to``, ``--format``) and the key of the reader and writer
    name: str
    #: the suffixes of files read as this format; the first is the one written
    suffixes: tuple[str, ...]
    #: the format in file dialogs, e.g. "EMAN2 box"
    label: str
    #: one line for the command line's format table
    help: str
    #: the program whose convention this is, shown beside the name ("" for none)
    program: str
    #: the file(s) written under the output folder and what they hold (markdown)
    files: str
    #: the unit of the coordinates (markdown)
    units: str
    #: where coordinate 0 lies: the origin and convention (markdown)
    origin: str
    #: where the class of a pick is kept (markdown)
    class_column: str
    #: the options the format needs beyond the picks (markdown)
    needs: str = "nothing"
    #: coordinates are in Angstrom, so the voxel size is needed
    needs_voxel_size: bool = False
    #: coordinates are relative to the tomogram centre, so its shape is needed
    needs_shape: bool = False
    #: coordinates are in unbinned tilt-series pixels: the binning scales them
    uses_binning: bool = False
    #: a RELION tomography file: rlnTomoName and the tilt-series pixel size apply
    relion_tomo: bool = False
    #: one class ("object") per file, named after the class names
    one_object_per_file: bool = False
    #: written to the very file name chosen (any of :attr:`suffixes`); other formats write
    #: their own file names into the chosen folder
    keeps_file_name: bool = False
    #: every tomogram's picks go into one table file (RELION, Dynamo), so the writer can
    #: write it under a file name the user chose (Dynamo's table map takes the same stem)
    one_table_file: bool = False
    #: for formats sharing a suffix: whether a file's text is this format; the one format of
    #: a suffix without this test is the one a file is when no other's test says so
    recognise: Optional[Callable[[str], bool]] = None

    @property
    def suffix(self) -> str:
        """The suffix of the files written."""
        return self.suffixes[0]

    @staticmethod
    def plain(text: str) -> str:
        """``text`` without markdown's backticks and bold marks."""
        return text.replace("**", "").replace("`", "")

    def file_filter(self, suffixes: Optional[Sequence[str]] = None) -> str:
        """This format as one Qt file-dialog filter, e.g. ``EMAN2 box (*.box)``."""
        patterns = " ".join(f"*{s}" for s in (suffixes or self.suffixes))
        return f"{self.label} ({patterns})"


FORMAT_SPECS: tuple[FormatSpec, ...] = (
    FormatSpec(
        name="coords", suffixes=(".coords", ".txt", ".csv"), label="DeepETPicker table",
        help="0-based voxels, class x y z [score]", program="",
        files="`<tomo>.coords`, `class x y z [score]`", units="voxels", origin="0-based",
        class_column="id", keeps_file_name=True),
    FormatSpec(
        name="box", suffixes=(".box",), label="EMAN2 box",
        help="EMAN2, 0-based voxels, one file per class", program="EMAN2",
        files="`<tomo>[_class-<k>[-<name>]].box`, `x y z`", units="voxels",
        origin="0-based, particle centre", class_column="file name",
        one_object_per_file=True),
    FormatSpec(
        name="star", suffixes=(".star",), label="RELION 3 particles",
        help="RELION 3, 0-based pixels of the tomogram", program="RELION 3",
        files="`particles.star`, `rlnMicrographName`, `rlnCoordinateX/Y/Z`",
        units="pixels of the tomogram", origin="0-based", class_column="`rlnClassNumber`",
        one_table_file=True),
    FormatSpec(
        name="relion4", suffixes=(".star",), label="RELION 4 tomography particles",
        help="RELION 4, 0-based pixels of the UNBINNED tilt series (voxel x binning)",
        program="RELION 4.0 tomo",
        files="`particles_relion4.star`, `rlnTomoName`, `rlnCoordinateX/Y/Z` (+ `data_optics` "
              "with `rlnTomoTiltSeriesPixelSize`)",
        units="pixels of the **unbinned tilt series** = voxel x binning", origin="0-based",
        class_column="`rlnClassNumber`",
        needs="`--binning B`, or `--voxel-size` with `--tilt-series-pixel-size` (read: the "
              "optics table); else binning 1; refused when the pixel sizes give no whole "
              "binning",
        uses_binning=True, relion_tomo=True, one_table_file=True,
        recognise=lambda text: RELION_TOMO_NAME in text and RELION_CENTRED_X not in text),
    FormatSpec(
        name="relion5", suffixes=(".star",), label="RELION 5 tomography particles",
        help="RELION 5, Angstrom from the tomogram centre", program="RELION 5.0 tomo",
        files="`particles_relion5.star`, `rlnTomoName`, `rlnCenteredCoordinateX/Y/ZAngst`",
        units="Angstrom", origin="tomogram centre, `size / 2`", class_column="`rlnClassNumber`",
        needs="`--voxel-size` and `--shape` (or `--tomogram`)",
        needs_voxel_size=True, needs_shape=True, relion_tomo=True, one_table_file=True,
        recognise=lambda text: RELION_CENTRED_X in text),
    FormatSpec(
        name="tbl", suffixes=(".tbl",), label="Dynamo table",
        help="Dynamo, 1-based voxels (Dynamo counts from 1; copick's Dynamo reader takes them "
             "as 0-based, one voxel off)", program="Dynamo",
        files="`particles.tbl` (x y z in columns 24-26) + table map `particles.doc`",
        units="voxels",
        origin="**1-based** (Dynamo counts from 1; copick's Dynamo reader takes .tbl as "
               "0-based, one voxel off)", class_column="column 22", one_table_file=True),
    FormatSpec(
        name="copick", suffixes=(".json",), label="copick picks",
        help="Angstrom, 0-based (voxel x voxel size)", program="",
        files="`ExperimentRuns/<run>/Picks/deepetpicker_0_<name>.json`",
        units="Angstrom = voxel x voxel size", origin="0-based", class_column="object name",
        needs="`--voxel-size` (or `--tomogram`)", needs_voxel_size=True,
        one_object_per_file=True),
    FormatSpec(
        name="ndjson", suffixes=(".ndjson", ".jsonl"), label="CryoET Data Portal points",
        help="CryoET Data Portal, 0-based voxels, per class", program="CryoET Data Portal",
        files='`<tomo>[_class-<k>[-<name>]].ndjson`, `{"type": "point", "location": '
              '{x, y, z}}`',
        units="voxels", origin="0-based", class_column="file name", one_object_per_file=True),
)

_BY_NAME = {spec.name: spec for spec in FORMAT_SPECS}


def format_names(where: Optional[Callable[[FormatSpec], bool]] = None) -> tuple[str, ...]:
    """The format names in the registry's order; with ``where``, those it accepts."""
    return tuple(s.name for s in FORMAT_SPECS if where is None or where(s))


def format_spec(name: str, what: str = "pick format") -> FormatSpec:
    """The spec of format ``name``; an unknown name is an error listing the known ones."""
    spec = _BY_NAME.get(name)
    if spec is None:
        raise DeepETPickerError(
            f"Unknown {what} {name!r}; choose one of {', '.join(format_names())}.")
    return spec


#: The suffixes of plain pick tables (the ``coords`` format): a config's ``coord_format``, what
#: :func:`deepetpicker.io.picks.write_picks` writes; :mod:`deepetpicker.io.dataset` lists it
#: among a dataset's names.
PICK_SUFFIXES = format_spec("coords").suffixes


def spoken_list(items: Sequence[str], conjunction: str = "and") -> str:
    """``a, b and c``."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def pick_file_suffixes() -> tuple[str, ...]:
    """Every suffix read as a pick file, each once, in the registry's order."""
    return tuple(dict.fromkeys(s for spec in FORMAT_SPECS for s in spec.suffixes))


def formats_for_suffix(suffix: str) -> tuple[FormatSpec, ...]:
    """The formats whose files have ``suffix`` (any case), in the registry's order."""
    suffix = suffix.lower()
    return tuple(spec for spec in FORMAT_SPECS if suffix in spec.suffixes)


def recognise_format(suffix: str, read_text: Callable[[], str]) -> Optional[FormatSpec]:
    """The format of a file with ``suffix`` (None when no format has it). Where several
    formats share the suffix, ``read_text()`` gives the file's text and their tests tell."""
    candidates = formats_for_suffix(suffix)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    text = read_text()
    for spec in candidates:
        if spec.recognise is not None and spec.recognise(text):
            return spec
    return next(spec for spec in candidates if spec.recognise is None)


def describe_suffixes() -> str:
    """The pick file suffixes and what they are, for messages: ``.coords/.txt/.csv
    (DeepETPicker table), .box (EMAN2), ...``."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for spec in FORMAT_SPECS:
        who = groups.setdefault(spec.suffixes, [])
        name = spec.program or spec.label
        if name not in who:
            who.append(name)
    return spoken_list([f"{'/'.join(suffixes)} ({', '.join(who)})"
                        for suffixes, who in groups.items()], "or")


def picks_file_filter() -> str:
    """The Qt file-dialog filter of every pick file that can be opened, then all files."""
    patterns = " ".join(f"*{s}" for s in pick_file_suffixes())
    return f"Pick files ({patterns});;All files (*)"


def save_file_filters() -> tuple[tuple[str, str, str], ...]:
    """``(filter text, format name, suffix)`` per choice of a "Save As" dialog: one per
    suffix of a format that keeps the chosen file name, one per other format."""
    return tuple((spec.file_filter([suffix]), spec.name, suffix)
                 for spec in FORMAT_SPECS
                 for suffix in (spec.suffixes if spec.keeps_file_name else spec.suffixes[:1]))


def save_format_for_suffix(suffix: str) -> Optional[str]:
    """The format a file named with ``suffix`` is saved as (the first to write that suffix;
    None when no format writes it)."""
    suffix = suffix.lower()
    return next((name for _, name, s in save_file_filters() if s == suffix), None)


def format_table_markdown() -> str:
    """The table of pick formats in docs/formats.md (one row per format, header included)."""
    lines = ["| format | file | units | origin | class | needs |",
             "|---|---|---|---|---|---|"]
    for spec in FORMAT_SPECS:
        title = f"`{spec.name}` ({spec.program})" if spec.program else f"`{spec.name}`"
        cells = [title, spec.files, spec.units, spec.origin, spec.class_column, spec.needs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

