"""``deepetpicker copick``: work with copick projects (``copick import``: a project as a
dataset)."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import HelpFormatter, add_command, add_copick_options, paragraph
from deepetpicker.cli.progress import run_job


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "copick",
                    "work with copick projects (`pip install 'deepetpicker[copick]'`)",
                    ["deepetpicker copick import copick.json --tomo-type wbp --voxel-spacing 10 "
                     "--user curator --out dataset"])
    group = p.add_subparsers(dest="copick_command", metavar="COMMAND", required=True)
    p = group.add_parser("import", formatter_class=HelpFormatter,
                         help="turn a copick project into a dataset to preprocess and train on",
                         description=paragraph(
                             "Turn a copick project into a dataset: per run with picks, its "
                             "tomogram (the .zarr in place, or an MRC copy) and a .coords of "
                             "the particles' picks (class id = label, voxels), plus a "
                             "preprocess config with the classes' names and diameters."))
    p.add_argument("config", help="the copick project's config JSON")
    add_copick_options(p, predicting=False)
    p.add_argument("--out", required=True, help="folder for the dataset")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of an earlier import in --out")
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from deepetpicker.copick_jobs import import_project

    result = run_job(import_project, args.config, args.tomo_type, args.voxel_spacing,
                     args.user, args.out, session_id=args.session, runs=args.runs,
                     overwrite=args.overwrite)
    print(result.summary())
    return 0
