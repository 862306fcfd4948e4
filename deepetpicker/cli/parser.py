"""The command line's parser: the shared pieces of every subcommand's parser and
:func:`build_parser`, which puts the subcommands together; each command's module adds its own
arguments (``add_parser``) and runs it (``run``)."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from typing import Sequence

from deepetpicker.io.format_specs import FORMAT_SPECS, format_names, spoken_list

FORMAT_NAMES = format_names()
#: the formats that an option applies to, as its help names them
OBJECT_FORMATS = spoken_list(format_names(lambda spec: spec.one_object_per_file))
_BINNING_FORMATS = "/".join(format_names(lambda spec: spec.uses_binning))
_RELION_TOMO_FORMATS = "/".join(format_names(lambda spec: spec.relion_tomo))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and ends each option's help with its default.

    A default that argparse holds is added as ``(default: X)``; an option whose default comes
    from elsewhere (the config, the checkpoint) says so in its own help text; flags and
    options with nothing to add show no "default: None".
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or action.required
                or "default" in text or "%(default)" in text
                or (not action.option_strings and action.nargs != "?")):
            return text
        return f"{text} (default: %(default)s)".strip()


def examples_epilog(*lines: str) -> str:
    """An epilog of example command lines; a long one continues on the next line with a
    backslash, so that it can still be pasted into a shell."""
    text = ["examples:"]
    for line in lines:
        parts = textwrap.wrap(line, width=76, break_long_words=False, break_on_hyphens=False)
        text.append("  " + " \\\n      ".join(parts))
    return "\n".join(text)


def paragraph(text: str) -> str:
    return textwrap.fill(text, width=78)


def formats_epilog() -> str:
    """The table of pick formats in ``convert --help``: name, coordinates, what it needs."""
    lines = ["formats (x y z in every one):"]
    for spec in FORMAT_SPECS:
        what = textwrap.wrap(spec.plain(spec.help), 46)
        needs = textwrap.wrap("needs " + spec.plain(spec.needs) if spec.needs == "nothing"
                              else spec.plain(spec.needs), 33)
        for i in range(max(len(what), len(needs))):
            name = spec.name if i == 0 else ""
            left = what[i] if i < len(what) else ""
            right = needs[i] if i < len(needs) else ""
            lines.append(f"  {name:<8} {left:<46}   {right}".rstrip())
    return "\n".join(lines)


def add_export_options(p: argparse.ArgumentParser, class_names_default: str) -> None:
    """Options of the format writers shared by convert and predict."""
    p.add_argument("--class-names", nargs="+", metavar="NAME",
                   help=f"name of class 1, 2, ... for the objects of {OBJECT_FORMATS} "
                        f"files (default: {class_names_default}). copick refuses spaces, "
                        "underscores and <>:\"/\\|?*. Example: --class-names ribosome "
                        "proteasome")
    p.add_argument("--binning", type=float, metavar="B",
                   help=f"{_BINNING_FORMATS}: tilt-series pixels per tomogram voxel; "
                        "coordinates are multiplied by B when written, divided when read "
                        "(default: voxel size / tilt-series pixel size when that is a whole "
                        "number, refused when it is not; 1 without a tilt-series pixel size). "
                        "Example: --binning 4")
    p.add_argument("--tilt-series-pixel-size", type=float, metavar="A",
                   help=f"{_RELION_TOMO_FORMATS}: Angstrom per pixel of the unbinned tilt series "
                        "(default: the file's rlnTomoTiltSeriesPixelSize when reading; none "
                        "otherwise). Example: --tilt-series-pixel-size 1.35")
    p.add_argument("--tomo-name", nargs="+", metavar="SPEC",
                   help=f"{_RELION_TOMO_FORMATS} rlnTomoName: a template with {{stem}} (our "
                        "tomogram name), e.g. 'TS_{stem}'; a template with {name} for tomograms "
                        "named after RELION's, e.g. 'rec_{name}' for RELION 5's "
                        "rec_<rlnTomoName>.mrc; STEM=NAME pairs; or a file of 'STEM NAME' lines "
                        "(default: rlnTomoName = tomogram name). Example: --tomo-name "
                        "'rec_{name}'")


def export_options(args: argparse.Namespace) -> dict:
    """The options of the format writers that were given (predict keeps its defaults)."""
    return {k: v for k, v in {"class_names": args.class_names, "binning": args.binning,
                              "tilt_series_pixel_size": args.tilt_series_pixel_size,
                              "tomo_name": args.tomo_name}.items() if v is not None}


def add_copick_options(p: argparse.ArgumentParser, predicting: bool) -> None:
    """The options naming what to read from a copick project (and, predicting, where picks
    go)."""
    need = not predicting
    with_copick = "; needed with --copick (no default)" if predicting else ""
    p.add_argument("--tomo-type", required=need,
                   help="copick tomogram type, e.g. wbp, denoised" + with_copick)
    p.add_argument("--voxel-spacing", type=float, required=need, metavar="V",
                   help="voxel spacing of the tomograms in Angstrom, e.g. 10.012" + with_copick)
    p.add_argument("--runs", nargs="+", metavar="R", help="runs to use (default: all)")
    p.add_argument("--user", required=need,
                   help="copick user id of the picks to " + ("write (default: deepetpicker)"
                                                             if predicting else "read"))
    p.add_argument("--session", help="copick session id of the picks to " + (
        "write (default: 0, a tool's)" if predicting else "read (default: every session)"))


def add_zarr_level(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zarr-level", metavar="LEVEL",
                   help="scale level read from OME-Zarr tomograms (.zarr): its index or name "
                        "(default: 0, the full resolution); picks are in that level's voxels")


def add_train_mask(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--mask", metavar="M",
                   help="region of interest: a volume of the tomograms' shape (MRC or .zarr, "
                        "non-zero = inside) or a folder of masks named like the tomograms, as "
                        "for predict --mask; background patches are drawn inside it and "
                        "validation leaves out picks and particles outside it " + default)


def default_of(config_class: type, name: str) -> str:
    """The default of a config dataclass's field ``name`` as the help texts write it (a list
    as its items joined by commas), so that the help cannot drift from the config."""
    field = config_class.__dataclass_fields__[name]
    value = field.default
    if value is dataclasses.MISSING:
        value = field.default_factory()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def add_command(subparsers: argparse._SubParsersAction, name: str, help: str,
                examples: Sequence[str], **kwargs) -> argparse.ArgumentParser:
    """A subcommand's parser: ``help`` in the list of commands and as its description, and an
    epilog of example command lines."""
    return subparsers.add_parser(name, help=help, description=paragraph(help),
                                 formatter_class=HelpFormatter,
                                 epilog=examples_epilog(*examples), **kwargs)
