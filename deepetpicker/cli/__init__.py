"""The ``deepetpicker`` command: every step of the workflow without a screen.

Each subcommand imports what it needs (torch, the jobs, Qt) only when it runs, so ``--help``
answers at once. User-facing failures (:class:`DeepETPickerError`) are printed without a
traceback. Ctrl+C asks the running job to stop at its next check (within about a second),
which keeps every finished output; a second Ctrl+C stops at once, which still leaves no
half-written file. Config warnings are printed as one line each.

Exit status: 0 done, 1 some tomograms failed (predict), 2 bad input or settings, 130
interrupted (Ctrl+C), 141 the output pipe was closed (e.g. ``| head``).

The package: :func:`build_parser` here, :mod:`~deepetpicker.cli.parser` (the shared parser
pieces), :mod:`~deepetpicker.cli.progress` (running a job: progress, Ctrl+C,
config warnings) and one module per command with its ``add_parser`` and ``run``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Optional, Sequence

from deepetpicker import __version__
from deepetpicker.cli import (
    convert,
    copick,
    demo,
    evaluate,
    gui,
    predict,
    preprocess,
    simulate,
    train,
)
from deepetpicker.cli.parser import (
    FORMAT_NAMES,
    HelpFormatter,
    examples_epilog,
    formats_epilog,
    paragraph,
)
from deepetpicker.cli.progress import (
    INTERRUPTED,
    Interrupted,
    ProgressPrinter,
    config_warnings_as_lines,
    say,
    summary_of,
)
from deepetpicker.errors import DeepETPickerError

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED", "EXIT_USER_ERROR", "FORMAT_NAMES",
           "HelpFormatter", "INTERRUPTED", "Interrupted", "ProgressPrinter", "build_parser",
           "formats_epilog", "main"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130     # 128 + SIGINT, as shells report a command stopped by Ctrl+C
EXIT_BROKEN_PIPE = 141     # 128 + SIGPIPE, as for any command whose reader went away
#: The subcommands in the order ``--help`` lists them.
COMMANDS = (preprocess, train, predict, copick, evaluate, convert, simulate, demo, gui)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line (``argv``: the arguments, default ``sys.argv[1:]``); the exit
    status. Called with ``argv`` (from Python), the SIGINT handler is as before on return;
    as the program, a Ctrl+C after an interruption is ignored until the process exits."""
    main_thread = threading.current_thread() is threading.main_thread()
    original = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        try:
            with config_warnings_as_lines():
                return _main(argv)
        finally:
            sys.stdout.flush()      # a closed pipe shows here, not at interpreter exit
            if main_thread and argv is not None:
                signal.signal(signal.SIGINT, original)
    except BrokenPipeError:
        # the reader (e.g. `head`) has what it wanted; say nothing more on that pipe
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE


def _main(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except DeepETPickerError as exc:
        say(f"error: {exc}")
        return EXIT_USER_ERROR
    except Interrupted as exc:
        say(INTERRUPTED)
        finished = summary_of(exc.partial) if exc.partial is not None else ""
        if finished:
            print("Finished before the interruption:")
            print(finished)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        say(INTERRUPTED)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command: the top level and one subcommand per module of
    :data:`COMMANDS`, each adding its own options."""
    parser = argparse.ArgumentParser(
        prog="deepetpicker", formatter_class=HelpFormatter,
        description=paragraph("Pick particles in cryo-electron tomograms with weakly "
                              "supervised 3D deep learning: preprocess -> train -> predict "
                              "-> evaluate."),
        epilog=examples_epilog(
            "deepetpicker simulate sample_data",
            "deepetpicker preprocess sample_data/configs/simulated.py",
            "deepetpicker train-config sample_data/configs/simulated.py --train-ids 0-1 "
            "--val-ids 2 -o train.py",
            "deepetpicker train train.py",
            "deepetpicker predict train.py --weights sample_data/runs/simulated/best.pth",
            "deepetpicker demo            # the whole workflow on simulated data",
        ) + "\n\n" + paragraph("`deepetpicker COMMAND --help` shows the options of each "
                                "command. Ctrl+C stops a command and keeps every finished "
                                "file."))
    parser.add_argument("--version", action="version", version=f"deepetpicker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser
