"""``deepetpicker demo``: the whole workflow on built-in simulated data."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import add_command
from deepetpicker.cli.progress import run_job


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "demo",
                    "simulate -> preprocess -> train -> predict -> evaluate on built-in sample "
                    "data",
                    ["deepetpicker demo",
                     "deepetpicker demo --full --device cuda --out demo_gpu"])
    p.add_argument("--out", default="demo_output", help="work folder (default: demo_output)")
    p.add_argument("--epochs", type=int, help="training epochs (default: 40, or 60 with "
                                              "--full)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--full", action="store_true", help="the full network and more epochs (GPU)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepetpicker.demo import run_demo

    result = run_job(run_demo, args.out, epochs=args.epochs, device=args.device,
                     full=args.full, seed=args.seed)
    print()
    print(result.summary())
    return 0
