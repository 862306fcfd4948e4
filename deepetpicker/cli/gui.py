"""``deepetpicker gui``: start the desktop application."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import add_command
from deepetpicker.errors import DeepETPickerError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "gui", "start the desktop application",
                    ["deepetpicker gui",
                     "deepetpicker gui sample_data/configs/train.py",
                     "deepetpicker gui --tomogram sample_data/raw/sim_00.mrc "
                     "--picks sample_data/raw/sim_00.coords"])
    p.add_argument("config", nargs="?", help="a config file to open")
    p.add_argument("--tomogram", help="open this tomogram in Particle Visualization "
                                      "(default: none)")
    p.add_argument("--picks", help="with --tomogram: picks to show and edit (default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from gui.app import main as gui_main
    except ImportError as exc:
        raise DeepETPickerError(
            f"The desktop application could not start ({exc}). Install PyQt5 and pyqtgraph "
            f"(`pip install PyQt5 pyqtgraph`) or reinstall DeepETPicker.") from exc
    argv = [args.config] if args.config else []
    for option in ("tomogram", "picks"):
        if getattr(args, option):
            argv += [f"--{option}", getattr(args, option)]
    return int(gui_main(argv) or 0)
