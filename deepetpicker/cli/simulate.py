"""``deepetpicker simulate``: simulated tomograms with known particles."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import add_command
from deepetpicker.cli.progress import run_job


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "simulate", "make simulated tomograms with known particles",
                    ["deepetpicker simulate sample_data",
                     "deepetpicker simulate small --n 2 --shape 48 96 96 --classes 1"])
    p.add_argument("out", nargs="?", default="sample_data", help="output folder (default: "
                                                                 "sample_data)")
    p.add_argument("--n", type=int, help="number of tomograms (default: 4)")
    p.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="tomogram shape in voxels (default: 64 192 192)")
    p.add_argument("--classes", type=int, help="number of particle classes, 1-4 (default: 3)")
    p.add_argument("--n-particles", type=int, help="particles per tomogram (default: one per "
                                                   "1100 voxels of the x-y area)")
    p.add_argument("--snr", type=float, help="signal-to-noise ratio of the tilt images "
                                             "(default: 0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the "
                                                       "same files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepetpicker.simulate import simulate_dataset

    options = {k: v for k, v in {"snr": args.snr, "n_particles": args.n_particles}.items()
               if v is not None}
    config_path = run_job(simulate_dataset, args.out, n=args.n,
                          shape=tuple(args.shape) if args.shape else None,
                          classes=args.classes, seed=args.seed, **options)
    print(f"Simulated dataset in {args.out}; preprocess it with:\n"
          f"  deepetpicker preprocess {config_path}")
    return 0
