"""The ``deepetpicker`` command: every step of the workflow without a screen.

Each subcommand imports what it needs (torch, the jobs, Qt) only when it runs, so ``--help``
answers at once. User-facing failures (:class:`DeepETPickerError`) are printed without a
traceback. Ctrl+C asks the running job to stop at its next check (within about a second),
which keeps every finished output; a second Ctrl+C stops at once, which still leaves no
half-written file. Config warnings are printed as one line each.

Exit status: 0 done, 1 some tomograms failed (predict), 2 bad input or settings, 130
interrupted (Ctrl+C), 141 the output pipe was closed (e.g. ``| head``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

from deepetpicker import __version__
from deepetpicker.config import LOSS_NAMES, NETWORK_PRESETS
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import FORMAT_SPECS, format_names, spoken_list
from deepetpicker.jobs import describe_progress

FORMAT_NAMES = format_names()
#: the formats that an option applies to, as its help names them
_OBJECT_FORMATS = spoken_list(format_names(lambda spec: spec.one_object_per_file))
_BINNING_FORMATS = "/".join(format_names(lambda spec: spec.uses_binning))
_RELION_TOMO_FORMATS = "/".join(format_names(lambda spec: spec.relion_tomo))

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130     # 128 + SIGINT, as shells report a command stopped by Ctrl+C
EXIT_BROKEN_PIPE = 141     # 128 + SIGPIPE, as for any command whose reader went away
INTERRUPTED = "Interrupted; finished outputs were kept, nothing half-written."


# --------------------------------------------------------------------------------------------
# Progress display
# --------------------------------------------------------------------------------------------
class ProgressPrinter:
    """Shows job progress events as one updating bar per stage (a terminal) or as log lines.

    On a terminal the current stage's bar is redrawn in place (at most every ``redraw``
    seconds, cut to the terminal's width) and a finished stage leaves its bar; elsewhere (CI,
    a pipe, a log file) a line is printed when a stage completes and at most every
    ``interval`` seconds in between. Events marked ``keep`` (a finished epoch) and messages
    without a count always get a line of their own that no bar overwrites. Writing never
    fails a job: when the stream is gone (a closed pipe) the printer falls silent.
    """

    def __init__(self, stream=None, interval: float = 10.0, width: int = 28,
                 redraw: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.width = width
        self.redraw = redraw
        self._last_print = float("-inf")   # the first event is always shown
        self._last_draw = float("-inf")
        self._drawn = None                 # (stage, item) of the bar on screen
        self._open_line = False
        self._silent = False

    def __call__(self, event) -> None:
        if event.keep and event.message:
            self._line(event.message)
            return
        if not event.total:
            if event.message:
                self._line(event.message)
            return
        now = time.monotonic()
        finished = event.done >= event.total
        if self.tty:
            key = (event.stage, event.item)
            if finished or key != self._drawn or now - self._last_draw >= self.redraw:
                self._write("\r\033[K" + self._fit(self._bar_text(event))
                            + ("\n" if finished else ""))
                self._open_line = not finished
                self._drawn = None if finished else key
                self._last_draw = now
        elif finished or now - self._last_print >= self.interval:
            self._write(self._bar_text(event) + "\n")
            self._last_print = now

    def _bar_text(self, event) -> str:
        return describe_progress(event, bar_width=self.width)

    def _fit(self, text: str) -> str:
        """Cut a bar to the terminal's width (a wrapped bar could not be redrawn in place)."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return text
        if columns < 20:            # unknown (a terminal that reports no size)
            return text
        return text if len(text) < columns else text[:columns - 1]

    def _line(self, text: str) -> None:
        """A permanent line; on a terminal it takes the place of an open bar."""
        if self._open_line and self.tty:
            self._write("\r\033[K" + text + "\n")
        else:
            self._write(text + "\n")
        self._open_line = False
        self._drawn = None

    def close(self) -> None:
        """End an open bar line, so that what follows starts on a line of its own."""
        if self._open_line:
            self._write("\n")
            self._open_line = False
            self._drawn = None

    def notice(self, text: str) -> None:
        """A line written from a signal handler: straight to the file descriptor, since the
        handler may run while the stream's own buffer is in the middle of a write."""
        data = ("\n" if self._open_line else "") + text + "\n"
        self._open_line = False
        self._drawn = None
        try:
            os.write(self.stream.fileno(), data.encode("utf-8", "replace"))
        except (AttributeError, OSError, ValueError):
            self._write(data)

    def _write(self, text: str) -> None:
        if self._silent:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):   # the reader went away; the job goes on
            self._silent = True


# --------------------------------------------------------------------------------------------
# Running a job: Ctrl+C, config warnings
# --------------------------------------------------------------------------------------------
class Interrupted(Exception):
    """The user stopped a job (Ctrl+C); ``partial`` is what it had finished, when it says."""

    def __init__(self, partial=None) -> None:
        super().__init__(INTERRUPTED)
        self.partial = partial


@contextmanager
def _ctrl_c_cancels(token, printer):
    """While the block runs, the first Ctrl+C sets ``token`` (the job stops at its next check
    and keeps what it finished) and the second raises KeyboardInterrupt (stops at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        printer.notice("Stopping after the current step; press Ctrl+C again to stop at once.")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        # once stopping, a further Ctrl+C has nothing left to stop: the command is reporting
        # what it finished and exits with 130. Ignored by the system, not by a Python
        # handler, so that one arriving while the interpreter shuts down (when Python puts
        # the default action back) cannot kill the process before its last words are out;
        # main puts the handler back for callers from Python.
        signal.signal(signal.SIGINT, signal.SIG_IGN if token.cancelled else previous)


def _run_job(job, *args, **kwargs):
    """Run a job function with a progress printer; Ctrl+C cancels it through its token.

    Raises :class:`Interrupted` (with the job's partial result, when it gives one) when the
    user stopped it.
    """
    from deepetpicker.jobs import CancelToken, Cancelled

    token = CancelToken()
    printer = ProgressPrinter()
    try:
        with _ctrl_c_cancels(token, printer):
            return job(*args, progress=printer, cancel=token, **kwargs)
    except KeyboardInterrupt:
        token.cancel()
        raise Interrupted() from None
    except Cancelled as exc:
        raise Interrupted(exc.partial) from None
    except Exception:
        if token.cancelled:     # a failure caused by the interruption, e.g. a data-loader
            raise Interrupted() from None   # worker that the terminal's Ctrl+C also hit
        raise
    finally:
        printer.close()


@contextmanager
def _config_warnings_as_lines():
    """Show each ConfigWarning as its one readable line on stderr (not Python's format with
    a source file and line of ours); other warnings are shown as before."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        from deepetpicker.config import ConfigWarning, warning_line

        if issubclass(category, ConfigWarning):
            _say(warning_line(message))
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = original


def _say(text: str) -> None:
    """A line on stderr that never raises (stderr may be a closed pipe)."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------------------------
def cmd_preprocess(args: argparse.Namespace) -> int:
    from deepetpicker.config import load_preprocess_config
    from deepetpicker.preprocess.job import preprocess

    cfg = load_preprocess_config(args.config)
    result = _run_job(preprocess, cfg, zarr_level=args.zarr_level)
    print(_summary(result) or f"Preprocessed dataset written under {cfg.base_path}")
    return 0


def cmd_train_config(args: argparse.Namespace) -> int:
    from deepetpicker.config import (NETWORK_PRESETS, TrainConfig, load_preprocess_config,
                                     save_config, written_by_save_config)
    from deepetpicker.io.outputs import check_output_folder
    from deepetpicker.train.dataset import check_dataset_ids, check_dataset_masks

    pre = load_preprocess_config(args.pre_config)
    overrides = {k: v for k, v in {
        "dset_name": args.name, "batch_size": args.batch_size, "patch_size": args.patch_size,
        "padding_size": args.pad_size, "lr": args.lr, "max_epochs": args.epochs,
        "device": args.device, "loss": args.loss, "seed": args.seed,
        "num_workers": args.num_workers, "mask_path": args.mask,
    }.items() if v is not None}
    if args.light:
        overrides["f_maps"] = list(NETWORK_PRESETS["light"])
        overrides.setdefault("model_name", "ResUNet")
    if args.gpu_ids is not None:
        overrides["gpu_ids"] = args.gpu_ids
    cfg = TrainConfig.from_preprocess(pre, args.train_ids, args.val_ids, **overrides)
    cfg.validate(check_paths=False)
    if not check_dataset_ids(cfg):
        print(f"note: {cfg.coord_path} holds no preprocessed dataset yet, so the tomogram ids "
              f"were not checked; preprocess before training.", file=sys.stderr)
    check_dataset_masks(cfg)
    output = Path(args.output)
    if output.exists():
        if output.resolve() == Path(args.pre_config).resolve():
            why = "is the preprocess config given, an input"
        elif not written_by_save_config(output):
            why = "holds settings DeepETPicker did not write (edited by hand?)"
        else:
            why = ""
        if why:
            raise DeepETPickerError(f"{output} exists and {why}; it is never replaced. Choose "
                                    f"another -o/--output file name.")
    check_output_folder(output.parent, "folder of the training config", "-o/--output")
    save_config(cfg, output)
    print(f"Training config written to {args.output}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from deepetpicker.config import load_train_config
    from deepetpicker.train.job import train

    cfg = load_train_config(args.config)
    if args.epochs is not None:
        cfg.max_epochs = args.epochs
    if args.mask is not None:
        cfg.mask_path = args.mask
    result = _run_job(train, cfg, resume=args.resume, device=args.device)
    print(_summary(result) or f"Training finished; checkpoints under {cfg.run_dir}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from deepetpicker.config import load_train_config
    from deepetpicker.infer.job import predict

    cfg = load_train_config(args.config) if args.config else None
    picking = {k: v for k, v in {"t_seg": args.t_seg, "t_lm": args.t_lm,
                                 "t_dist": args.t_dist, "localize": args.localize,
                                 "min_score": args.min_score,
                                 "min_class_confidence": args.min_class_confidence}.items()
               if v is not None}
    job, where = predict, {"tomograms": args.tomograms, "zarr_level": args.zarr_level}
    if args.copick:
        job, where = _copick_predict(args)
    elif any(v is not None for v in (args.tomo_type, args.voxel_spacing, args.runs, args.user,
                                     args.session)):
        raise DeepETPickerError("--tomo-type, --voxel-spacing, --runs, --user and --session "
                                "name a copick project's data: give the project with --copick.")
    result = _run_job(job, cfg, args.weights, out=args.out, pad=args.pad_size,
                      save_scores=args.save_scores, formats=tuple(args.format or ()),
                      device=args.device, batch_size=args.batch_size, picking=picking,
                      export=_export_options(args), diameters=args.diameters,
                      overwrite=args.overwrite, force=args.force, tta=args.tta_set or args.tta,
                      mask=args.mask, **where)
    print(_summary(result) or "Prediction finished")
    failed = getattr(result, "failed", None)
    return 1 if failed else 0


def _copick_predict(args: argparse.Namespace) -> tuple:
    """The job and its project options for ``predict --copick``."""
    from deepetpicker.copick_jobs import predict_into_project

    missing = [o for o, v in (("--tomo-type", args.tomo_type),
                              ("--voxel-spacing", args.voxel_spacing)) if v is None]
    if missing or args.tomograms or args.zarr_level is not None:
        raise DeepETPickerError(
            "--copick reads the tomograms of --tomo-type at --voxel-spacing from the project: "
            "give " + (" and ".join(missing) if missing else "no --tomograms or --zarr-level")
            + " with it.")
    given = {"user_id": args.user, "session_id": args.session}
    return predict_into_project, {"copick_config": args.copick, "tomo_type": args.tomo_type,
                                  "voxel_spacing": args.voxel_spacing, "runs": args.runs,
                                  **{k: v for k, v in given.items() if v is not None}}


def cmd_copick_import(args: argparse.Namespace) -> int:
    from deepetpicker.copick_jobs import import_project

    result = _run_job(import_project, args.config, args.tomo_type, args.voxel_spacing,
                      args.user, args.out, session_id=args.session, runs=args.runs,
                      overwrite=args.overwrite)
    print(result.summary())
    return 0


def _add_copick_options(p: argparse.ArgumentParser, predicting: bool) -> None:
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from deepetpicker.evaluate import evaluate_folder

    result = _run_job(evaluate_folder, args.pred, args.truth, occupancy_dir=args.occupancy,
                      diameters=args.diameters, out=args.out, beta=args.beta,
                      dilate=not args.no_dilate, skip_classes=args.skip_classes or (),
                      overwrite=args.overwrite)
    print(_summary(result) or result)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from deepetpicker.io.formats import convert

    written = convert(args.picks, args.to, args.out, voxel_size=args.voxel_size,
                      class_id=args.class_id, shapes=args.shape and [tuple(args.shape)],
                      tomograms=args.tomogram, overwrite=args.overwrite,
                      **_export_options(args))
    for path in written:
        print(path)
    return 0


def _add_zarr_level(p) -> None:
    p.add_argument("--zarr-level", metavar="LEVEL",
                   help="scale level read from OME-Zarr tomograms (.zarr): its index or name "
                        "(default: 0, the full resolution); picks are in that level's voxels")


def _add_train_mask(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--mask", metavar="M",
                   help="region of interest: a volume of the tomograms' shape (MRC or .zarr, "
                        "non-zero = inside) or a folder of masks named like the tomograms, as "
                        "for predict --mask; background patches are drawn inside it and "
                        "validation leaves out picks and particles outside it " + default)


def _export_options(args) -> dict:
    """The options of the format writers that were given (predict keeps its defaults)."""
    return {k: v for k, v in {"class_names": args.class_names, "binning": args.binning,
                              "tilt_series_pixel_size": args.tilt_series_pixel_size,
                              "tomo_name": args.tomo_name}.items() if v is not None}


def cmd_simulate(args: argparse.Namespace) -> int:
    from deepetpicker.simulate import simulate_dataset

    options = {k: v for k, v in {"snr": args.snr, "n_particles": args.n_particles}.items()
               if v is not None}
    config_path = _run_job(simulate_dataset, args.out, n=args.n,
                           shape=tuple(args.shape) if args.shape else None,
                           classes=args.classes, seed=args.seed, **options)
    print(f"Simulated dataset in {args.out}; preprocess it with:\n"
          f"  deepetpicker preprocess {config_path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from deepetpicker.demo import run_demo

    result = _run_job(run_demo, args.out, epochs=args.epochs, device=args.device,
                      full=args.full, seed=args.seed)
    print()
    print(result.summary())
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
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


def _summary(result) -> str:
    summary = getattr(result, "summary", None)
    if callable(summary):
        return summary()
    return summary if isinstance(summary, str) else ""


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------
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


def _examples(*lines: str) -> str:
    """An epilog of example command lines; a long one continues on the next line with a
    backslash, so that it can still be pasted into a shell."""
    text = ["examples:"]
    for line in lines:
        parts = textwrap.wrap(line, width=76, break_long_words=False, break_on_hyphens=False)
        text.append("  " + " \\\n      ".join(parts))
    return "\n".join(text)


def _paragraph(text: str) -> str:
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


def _add_export_options(p, class_names_default: str) -> None:
    """Options of the format writers shared by convert and predict."""
    p.add_argument("--class-names", nargs="+", metavar="NAME",
                   help=f"name of class 1, 2, ... for the objects of {_OBJECT_FORMATS} "
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepetpicker", formatter_class=HelpFormatter,
        description=_paragraph("Pick particles in cryo-electron tomograms with weakly "
                               "supervised 3D deep learning: preprocess -> train -> predict "
                               "-> evaluate."),
        epilog=_examples(
            "deepetpicker simulate sample_data",
            "deepetpicker preprocess sample_data/configs/simulated.py",
            "deepetpicker train-config sample_data/configs/simulated.py --train-ids 0-1 "
            "--val-ids 2 -o train.py",
            "deepetpicker train train.py",
            "deepetpicker predict train.py --weights sample_data/runs/simulated/best.pth",
            "deepetpicker demo            # the whole workflow on simulated data",
        ) + "\n\n" + _paragraph("`deepetpicker COMMAND --help` shows the options of each "
                                 "command. Ctrl+C stops a command and keeps every finished "
                                 "file."))
    parser.add_argument("--version", action="version", version=f"deepetpicker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, examples: Sequence[str], **kwargs):
        return sub.add_parser(name, help=help, description=_paragraph(help),
                              formatter_class=HelpFormatter, epilog=_examples(*examples),
                              **kwargs)

    p = command("preprocess", "normalise tomograms and write weak labels and occupancy maps "
                              "from a preprocess config",
                ["deepetpicker preprocess sample_data/configs/simulated.py",
                 "deepetpicker preprocess /data/ribosomes/configs/ribosomes.py"])
    p.add_argument("config", help="preprocess config file (pre_config=...)")
    _add_zarr_level(p)
    p.set_defaults(func=cmd_preprocess)

    p = command("train-config", "write a training config from a preprocess config",
                ["deepetpicker train-config sample_data/configs/simulated.py --train-ids 0-1 "
                 "--val-ids 2 -o sample_data/configs/train.py",
                 "deepetpicker train-config pre.py --train-ids 0,2,4 --val-ids 5 --light "
                 "--epochs 100 -o train.py"])
    p.add_argument("pre_config", help="preprocess config file")
    p.add_argument("--train-ids", required=True, help='training tomogram ids, e.g. "0-7" or "0,2"')
    p.add_argument("--val-ids", required=True, help='validation tomogram ids, e.g. "8"')
    p.add_argument("-o", "--output", required=True, help="training config file to write")
    p.add_argument("--name", help="dataset/run name (default: from the preprocess config)")
    p.add_argument("--light", action="store_true",
                   help="the light network (channels "
                        + ",".join(map(str, NETWORK_PRESETS["light"])) + "), almost as accurate")
    p.add_argument("--batch-size", type=int, help="patches per training step (default: 8)")
    p.add_argument("--patch-size", type=int, help="patch edge, a multiple of 8 (default: 72)")
    p.add_argument("--pad-size", type=int, help="overlap-tile pad (default: 12)")
    p.add_argument("--lr", type=float, help="peak learning rate of the one-cycle schedule "
                                            "(default: 0.001)")
    p.add_argument("--epochs", type=int, help="training epochs, max_epochs (default: 60)")
    p.add_argument("--loss", choices=list(LOSS_NAMES),
                   help="training loss (default: dice)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: auto, a GPU when "
                                    "there is one)")
    p.add_argument("--gpu-ids", help='GPU ids, e.g. "0,1" (default: 0)')
    p.add_argument("--seed", type=int, help="random seed; the same seed repeats a CPU run "
                                            "(default: 0)")
    p.add_argument("--num-workers", type=int, help="processes preparing batches, 4-8 on a GPU "
                                                   "(default: 0, the training process itself)")
    _add_train_mask(p, "(mask_path; default: none, the whole tomograms)")
    p.set_defaults(func=cmd_train_config)

    p = command("train", "train the 3D-ResUNet from a training config",
                ["deepetpicker train sample_data/configs/train.py",
                 "deepetpicker train train.py --resume sample_data/runs/simulated/last.pth "
                 "--epochs 80",
                 "torchrun --nproc_per_node=2 -m deepetpicker train train.py   # two GPUs"])
    p.add_argument("config", help="training config file (train_configs=...)")
    p.add_argument("--resume", help="last.pth of an earlier run to continue (default: start a "
                                    "new run)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's device)")
    p.add_argument("--epochs", type=int, help="override max_epochs (default: the config's)")
    _add_train_mask(p, "(default: the config's mask_path)")
    p.set_defaults(func=cmd_train)

    p = command("predict", "pick particles in tomograms with trained weights",
                ["deepetpicker predict train.py --weights sample_data/runs/simulated/best.pth",
                 "deepetpicker predict --weights best.pth --tomograms /data/tomos --out picks "
                 "--format star"])
    p.add_argument("config", nargs="?",
                   help="training config file (default: the one saved in the checkpoint)")
    p.add_argument("--weights", required=True,
                   help="checkpoint: best.pth or last.pth of a run, or the original's .ckpt")
    p.add_argument("--tomograms", nargs="+", help="tomogram files or folders (default: the "
                                                  "config's dataset)")
    p.add_argument("--out", help="output folder (default: <base_path>/runs/<name>/predictions)")
    p.add_argument("--format", nargs="+", choices=FORMAT_NAMES,
                   help="also write these formats (default: .coords only; their conventions: "
                        "deepetpicker convert --help)")
    _add_export_options(p, "the checkpoint's class names")
    p.add_argument("--pad-size", type=int, help="overlap-tile pad (default: the config's)")
    p.add_argument("--t-seg", type=float, help="segmentation threshold (default: the config's "
                                               "seg_thresh, 0.5 unless set)")
    p.add_argument("--t-lm", type=float, help="local-maximum threshold (default: the config's "
                                              "t_lm, 0.1 unless set)")
    p.add_argument("--t-dist", type=float, help="merge picks closer than this in voxels "
                                                "(default: ceil(d / 2) of each class's "
                                                "diameter)")
    p.add_argument("--min-score", type=float, nargs="+", metavar="S",
                   help="drop picks whose detection score is below this, one value or one per "
                        "class (default: the thresholds tuned per class for the best "
                        "localisation F1 on the validation tomograms during training, stored "
                        "in the checkpoint; 0 keeps every pick)")
    p.add_argument("--min-class-confidence", type=float, metavar="C",
                   help="drop picks whose class confidence (their class's share of the class "
                        "probabilities around them, in the sidecar) is below this (default: "
                        "keep them; a found particle is not dropped for an uncertain class)")
    p.add_argument("--localize", choices=["class", "foreground"],
                   help="class: search each class map on its own (the paper's rule); "
                        "foreground: find particles on all classes together, then give each "
                        "the most probable class (finds particles whose probability is split "
                        "over similar classes) (default: the config's localize, foreground "
                        "unless set)")
    p.add_argument("--diameters", type=float, nargs="+", metavar="D",
                   help="particle diameter per class in voxels (needed for the original "
                        "program's .ckpt without a config; overrides the config's; default: "
                        "the config's ocp_diameter)")
    p.add_argument("--save-scores", action="store_true", help="also write score maps as MRC")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average the score maps over the 8 mirrorings "
                        "of z, y and x of every tile (as in training) before picking; 8 times "
                        "the scan time")
    p.add_argument("--tta-set", choices=["flips", "full"],
                   help="the transforms of --tta (and turns it on): flips, the 8 above; full, "
                        "those and their 90-degree turns in the XY plane, 16 transforms, 16 "
                        "times the scan time (a quarter turn moves a single-axis missing wedge "
                        "from x to y, which training does not show the network) (default: "
                        "flips)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs of an earlier run in --out (never your own files or "
                        "the inputs)")
    p.add_argument("--force", action="store_true",
                   help="pick again the tomograms already picked with the same weights and "
                        "settings (they are skipped otherwise)")
    p.add_argument("--batch-size", type=int, help="tiles per forward pass (default: the "
                                                  "config's batch_size on a GPU, 1-8 by "
                                                  "memory on the CPU)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's device)")
    _add_zarr_level(p)
    p.add_argument("--mask", metavar="M",
                   help="region of interest: a volume of the tomogram's shape (MRC or .zarr, "
                        "non-zero = keep) or a folder of masks named like the tomograms; picks "
                        "outside it are dropped and tiles outside it are not run (default: "
                        "the whole tomogram)")
    p.add_argument("--copick", metavar="CONFIG",
                   help="pick the tomograms of this copick project (its config JSON) and store "
                        "the picks in it, one copick picks file per object; needs --tomo-type "
                        "and --voxel-spacing; .coords go to --out/<run> (default: "
                        "deepetpicker-predictions beside the config); --overwrite replaces "
                        "picks of the same user and session")
    _add_copick_options(p, predicting=True)
    p.set_defaults(func=cmd_predict)

    p = command("copick", "work with copick projects (`pip install 'deepetpicker[copick]'`)",
                ["deepetpicker copick import copick.json --tomo-type wbp --voxel-spacing 10 "
                 "--user curator --out dataset"])
    group = p.add_subparsers(dest="copick_command", metavar="COMMAND", required=True)
    p = group.add_parser("import", formatter_class=HelpFormatter,
                         help="turn a copick project into a dataset to preprocess and train on",
                         description=_paragraph(
                             "Turn a copick project into a dataset: per run with picks, its "
                             "tomogram (the .zarr in place, or an MRC copy) and a .coords of "
                             "the particles' picks (class id = label, voxels), plus a "
                             "preprocess config with the classes' names and diameters."))
    p.add_argument("config", help="the copick project's config JSON")
    _add_copick_options(p, predicting=False)
    p.add_argument("--out", required=True, help="folder for the dataset")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of an earlier import in --out")
    p.set_defaults(func=cmd_copick_import)

    p = command("evaluate", "compare picks with ground truth (SHREC-2021 and distance rules, "
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
    p.set_defaults(func=cmd_evaluate)

    p = command("convert", "convert pick files between formats",
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
    _add_export_options(p, f"class-1, class-2, ...; names found in {_OBJECT_FORMATS} "
                           "files are kept")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files an earlier run wrote in --out from other inputs or "
                        "settings (never your own files or the inputs)")
    p.set_defaults(func=cmd_convert)

    p = command("simulate", "make simulated tomograms with known particles",
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
    p.set_defaults(func=cmd_simulate)

    p = command("demo", "simulate -> preprocess -> train -> predict -> evaluate on built-in "
                        "sample data",
                ["deepetpicker demo",
                 "deepetpicker demo --full --device cuda --out demo_gpu"])
    p.add_argument("--out", default="demo_output", help="work folder (default: demo_output)")
    p.add_argument("--epochs", type=int, help="training epochs (default: 40, or 60 with "
                                              "--full)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--full", action="store_true", help="the full network and more epochs (GPU)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=cmd_demo)

    p = command("gui", "start the desktop application",
                ["deepetpicker gui",
                 "deepetpicker gui sample_data/configs/train.py",
                 "deepetpicker gui --tomogram sample_data/raw/sim_00.mrc "
                 "--picks sample_data/raw/sim_00.coords"])
    p.add_argument("config", nargs="?", help="a config file to open")
    p.add_argument("--tomogram", help="open this tomogram in Particle Visualization "
                                      "(default: none)")
    p.add_argument("--picks", help="with --tomogram: picks to show and edit (default: none)")
    p.set_defaults(func=cmd_gui)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line (``argv``: the arguments, default ``sys.argv[1:]``); the exit
    status. Called with ``argv`` (from Python), the SIGINT handler is as before on return;
    as the program, a Ctrl+C after an interruption is ignored until the process exits."""
    main_thread = threading.current_thread() is threading.main_thread()
    original = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        try:
            with _config_warnings_as_lines():
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
        _say(f"error: {exc}")
        return EXIT_USER_ERROR
    except Interrupted as exc:
        _say(INTERRUPTED)
        finished = _summary(exc.partial) if exc.partial is not None else ""
        if finished:
            print("Finished before the interruption:")
            print(finished)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _say(INTERRUPTED)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
