"""``deepetpicker convert``: convert pick files between formats."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import (
    FORMAT_NAMES,
    OBJECT_FORMATS,
    add_command,
    add_export_options,
    export_options,
    formats_epilog,
)
from deepetpicker.io.format_specs import format_names, spoken_list


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "convert", "convert pick files between formats",
                    ["deepetpicker convert picks/ --to relion4 --out r4/ --voxel-size 5.4 "
                     "--binning 4",
                     "deepetpicker convert picks/ --to relion5 --out r5/ --tomogram tomograms/ "
                     "--tomo-name 'rec_{name}'",
                     "deepetpicker convert particles.star --to copick --out cp/ --tomogram "
                     "tomograms/ --class-names ribosome proteasome"])
    p.description = ("Read pick files of any supported format and write them in another.\n"
                     "The input format comes from the extension; a .star file's labels tell\n"
                     "RELION 3, 4 and 5 apart.")
    p.epilog = formats_epilog() + "\n\n" + p.epilog
    p.add_argument("picks", nargs="+", help="pick files or folders of them, e.g. picks/*.coords")
    p.add_argument("--to", required=True, choices=FORMAT_NAMES, metavar="FORMAT",
                   help="output format: " + ", ".join(FORMAT_NAMES) + " (required)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (required)")
    p.add_argument("--voxel-size", type=float, metavar="A",
                   help="Angstrom per voxel of the picked tomograms; needed by "
                        f"{spoken_list(format_names(lambda spec: spec.needs_voxel_size))} "
                        "(default: from --tomogram headers, else from the file, e.g. a "
                        "copick voxel_spacing; none otherwise). Example: --voxel-size 13.48")
    p.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="tomogram size in voxels; needed by "
                        f"{spoken_list(format_names(lambda spec: spec.needs_shape))}, read or "
                        "written, and checks that picks lie inside (default: from --tomogram; "
                        "none otherwise). Example: --shape 300 928 928")
    p.add_argument("--tomogram", nargs="+", metavar="PATH",
                   help="tomogram files or folders named like the picks' tomograms; give "
                        "--shape and --voxel-size from their headers (default: none). "
                        "Example: --tomogram tomograms/")
    p.add_argument("--class", dest="class_id", type=int, metavar="K",
                   help="keep only class K (default: all classes). Example: --class 2")
    add_export_options(p, f"class-1, class-2, ...; names found in {OBJECT_FORMATS} "
                           "files are kept")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files an earlier run wrote in --out from other inputs or "
                        "settings (never your own files or the inputs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepetpicker.ops.convert import convert

    written = convert(args.picks, args.to, args.out, voxel_size=args.voxel_size,
                      class_id=args.class_id, shapes=args.shape and [tuple(args.shape)],
                      tomograms=args.tomogram, overwrite=args.overwrite,
                      **export_options(args))
    for path in written:
        print(path)
    return 0
