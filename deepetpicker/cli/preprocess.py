"""``deepetpicker preprocess``: normalise tomograms and write weak labels and occupancy maps."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import add_command, add_zarr_level
from deepetpicker.cli.progress import run_job, summary_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "preprocess",
                    "normalise tomograms and write weak labels and occupancy maps from a "
                    "preprocess config",
                    ["deepetpicker preprocess sample_data/configs/simulated.py",
                     "deepetpicker preprocess /data/ribosomes/configs/ribosomes.py"])
    p.add_argument("config", help="preprocess config file (pre_config=...)")
    add_zarr_level(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepetpicker.config import load_preprocess_config
    from deepetpicker.preprocess.job import preprocess

    cfg = load_preprocess_config(args.config)
    result = run_job(preprocess, cfg, zarr_level=args.zarr_level)
    print(summary_of(result) or f"Preprocessed dataset written under {cfg.base_path}")
    return 0
