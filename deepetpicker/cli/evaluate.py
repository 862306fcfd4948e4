"""``deepetpicker evaluate``: compare picks with ground truth."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import add_command
from deepetpicker.cli.progress import run_job, summary_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "evaluate",
                    "compare picks with ground truth (SHREC-2021 and distance rules, "
                    "precision-recall curve)",
                    ["deepetpicker evaluate --pred sample_data/runs/simulated/predictions "
                     "--truth sample_data/raw --occupancy sample_data/data_ocp --out evaluation",
                     "deepetpicker evaluate --pred picks --truth truth --diameters 24 16"])
    p.add_argument("--pred", required=True, help="folder or file of predicted picks")
    p.add_argument("--truth", required=True, help="folder or file of true picks")
    p.add_argument("--occupancy", help="folder of occupancy maps of particle ids, e.g. "
                                       "<base>/data_ocp (SHREC 2021 rule; needs this or "
                                       "--diameters; default: none)")
    p.add_argument("--no-dilate", action="store_true",
                   help="look picks up in the occupancy maps as they are (the SHREC 2021 rule, "
                        "the default, first dilates them by one voxel)")
    p.add_argument("--skip-classes", type=int, nargs="+", metavar="CLASS",
                   help="leave these classes out of the SHREC-rule truth (as the challenge "
                        "left out 4V94 and vesicles; default: none)")
    p.add_argument("--diameters", type=float, nargs="+",
                   help="particle diameter per class (voxels) for the distance rule (default: "
                        "that rule is not applied)")
    p.add_argument("--beta", type=float, default=4.0, help="F-beta weight, > 0 (default: 4)")
    p.add_argument("--out", help="folder for the JSON report, table and PR curve (default: "
                                 "print the report only)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier evaluation of other picks in --out (never your "
                        "own files or the inputs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepetpicker.evaluate import evaluate_folder

    result = run_job(evaluate_folder, args.pred, args.truth, occupancy_dir=args.occupancy,
                     diameters=args.diameters, out=args.out, beta=args.beta,
                     dilate=not args.no_dilate, skip_classes=args.skip_classes or (),
                     overwrite=args.overwrite)
    print(summary_of(result) or result)
    return 0
