"""The command line: instant help with defaults and examples, lazy heavy imports, clean
errors without tracebacks, readable config warnings, progress that keeps finished epochs,
Ctrl+C (status 130, finished outputs kept) and closed pipes."""

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import config_with_unknown_key

import deepetpicker.cli as cli
from deepetpicker.cli import INTERRUPTED, HelpFormatter, ProgressPrinter, build_parser, main
from deepetpicker.progress import Progress

REPO = Path(__file__).resolve().parents[1]

SUBCOMMANDS = ["preprocess", "train-config", "train", "predict", "evaluate", "convert",
               "simulate", "demo", "gui"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_imports_no_heavy_module(name):
    code = ("import sys\n"
            "from deepetpicker.cli import main\n"
            "try:\n"
            f"    main([{name!r}, '--help'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "heavy = [m for m in ('torch', 'PyQt5', 'scipy', 'mrcfile', 'pyqtgraph', 'skimage')\n"
            "         if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert "usage: deepetpicker " + name in proc.stdout
    assert elapsed < 5.0  # interpreter start-up included; the command itself imports nothing
    # an epilog with example command lines of this very command
    examples = proc.stdout.split("\nexamples:\n", 1)[1]
    assert re.search(rf"^  (deepetpicker|torchrun .* -m deepetpicker) {name}\b", examples, re.M)
    assert "default: None" not in proc.stdout and "default: False" not in proc.stdout


def test_user_error_prints_message_without_traceback(tmp_path):
    missing = tmp_path / "nowhere.py"
    proc = subprocess.run([sys.executable, "-m", "deepetpicker", "preprocess", str(missing)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(missing) in proc.stderr
    assert proc.stderr.startswith("error: ")


def test_bad_option_value_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["convert", "a.coords", "--to", "pdf", "--out", "x"])
    assert exc.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


class _Stream:
    def __init__(self, tty):
        self.text = ""
        self._tty = tty

    def isatty(self):
        return self._tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def screen(text):
    """The lines a terminal shows after ``text``: a carriage return goes back to the start of
    the line, ESC[K clears the rest of it."""
    lines, line, col = [], [], 0
    for token in re.split(r"(\r|\n|\x1b\[K)", text):
        if token == "\r":
            col = 0
        elif token == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif token == "\x1b[K":
            del line[col:]
        else:
            for ch in token:
                if col < len(line):
                    line[col] = ch
                else:
                    line.append(ch)
                col += 1
    return lines + (["".join(line)] if line else [])


def test_progress_printer_log_lines_when_not_a_terminal():
    stream = _Stream(tty=False)
    printer = ProgressPrinter(stream=stream, interval=3600)
    printer(Progress("train", 1, 4, metrics={"loss": 0.51234}))
    printer(Progress("train", 2, 4))  # within the interval: not printed
    printer(Progress("train", 4, 4))
    printer(Progress("log", message="saved checkpoint"))
    lines = stream.text.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("train") and "1/4" in lines[0] and "loss=0.5123" in lines[0]
    assert "4/4" in lines[1] and "#" * 28 in lines[1]
    assert lines[2] == "saved checkpoint"


def test_progress_printer_redraws_in_place_on_a_terminal():
    stream = _Stream(tty=True)
    printer = ProgressPrinter(stream=stream)
    printer(Progress("predict", 1, 2, item="tomo_a"))
    printer(Progress("predict", 2, 2, item="tomo_a"))
    assert stream.text.count("\r") == 2
    assert stream.text.endswith("\n")
    assert "tomo_a" in stream.text


def test_finished_epochs_stay_on_screen_between_redrawn_bars():
    stream = _Stream(tty=True)
    printer = ProgressPrinter(stream=stream, redraw=0)
    printer(Progress("train", 1, 6, item="epoch 1", metrics={"loss": 0.9}))
    printer(Progress("train", 2, 6, item="epoch 1"))
    printer(Progress("epoch", 1, 3, message="epoch 1/3: train loss 0.9000, 1.0 s", keep=True))
    printer(Progress("train", 3, 6, item="epoch 2"))
    printer(Progress("train", 4, 6, item="epoch 2"))
    printer(Progress("validate", 1, 2, item="epoch 2 tomo1"))
    printer(Progress("validate", 2, 2, item="epoch 2 tomo1"))
    printer(Progress("epoch", 2, 3, message="epoch 2/3: train loss 0.8000, 1.0 s", keep=True))
    printer(Progress("train", 5, 6, item="epoch 3"))
    lines = screen(stream.text)
    assert lines[0] == "epoch 1/3: train loss 0.9000, 1.0 s"
    assert lines[1].startswith("validate  [") and lines[1].endswith("2/2  epoch 2 tomo1")
    assert lines[2] == "epoch 2/3: train loss 0.8000, 1.0 s"
    assert lines[3].startswith("train  [") and "5/6" in lines[3] and len(lines) == 4

    stream = _Stream(tty=False)       # a log: the same permanent lines, bars now and then
    printer = ProgressPrinter(stream=stream, interval=3600)
    printer(Progress("train", 1, 6))
    printer(Progress("train", 2, 6))
    printer(Progress("epoch", 1, 3, message="epoch 1/3: train loss 0.9000, 1.0 s", keep=True))
    printer(Progress("train", 3, 6))
    assert stream.text.splitlines()[1:] == ["epoch 1/3: train loss 0.9000, 1.0 s"]


def test_terminal_bars_are_throttled_and_fit_the_width(monkeypatch):
    stream = _Stream(tty=True)
    stream.fileno = lambda: 2
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((40, 20)))
    printer = ProgressPrinter(stream=stream, redraw=3600)
    for done in range(1, 100):
        printer(Progress("scan", done, 100, item="a_rather_long_tomogram_name"))
    printer(Progress("scan", 100, 100, item="a_rather_long_tomogram_name"))
    assert stream.text.count("\r") == 2            # the first and the finished bar
    assert all(len(line) < 40 for line in screen(stream.text))


def test_a_closed_progress_stream_does_not_stop_the_job():
    class Closed(_Stream):
        attempts = 0

        def write(self, s):
            Closed.attempts += 1
            raise BrokenPipeError(32, "Broken pipe")

    printer = ProgressPrinter(stream=Closed(tty=False))
    printer(Progress("scan", 1, 2))            # the pipe breaks: no exception reaches the job
    assert Closed.attempts == 1
    printer(Progress("scan", 2, 2))
    printer(Progress("log", message="still fine"))
    printer.close()
    assert Closed.attempts == 1                # then silent: no write to a closed pipe again

    # the same job with a stream that works prints every one of those events
    stream = _Stream(tty=False)
    working = ProgressPrinter(stream=stream)
    working(Progress("scan", 1, 2))
    working(Progress("scan", 2, 2))
    working(Progress("log", message="still fine"))
    working.close()
    assert stream.text.count("\n") == 3 and stream.text.endswith("still fine\n")


@pytest.mark.slow
def test_training_prints_one_permanent_line_per_epoch(tmp_path, monkeypatch, capsys):
    from deepetpicker.config import save_config

    from train_fixtures import make_preprocessed, train_config

    pre, _ = make_preprocessed(tmp_path, n_tomos=2, n_particles=6)
    config = save_config(train_config(pre, max_epochs=2), tmp_path / "train.py")
    terminal = _Stream(tty=True)
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["train", str(config)]) == 0
    lines = screen(terminal.text)
    number = r"\d+\.\d+"
    pattern = (rf"epoch (\d)/2: train loss {number}, val loss {number}, localisation F1 "
               rf"{number} \(every pick kept {number}\), class F1 {number}"
               rf"( \(best\))?, {number} s \(validation {number} s\)")
    epochs = [m.group(1) for m in map(re.compile(pattern).fullmatch, lines) if m]
    assert epochs == ["1", "2"], lines
    validated = [line for line in lines if line.startswith("validate")]
    assert [re.search(r"epoch \d", line).group(0) for line in validated] == ["epoch 1",
                                                                             "epoch 2"]
    assert "Training finished after 2 epoch(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Ctrl+C and closed pipes
# --------------------------------------------------------------------------------------------
def _temporary_files(folder):
    return [p for p in Path(folder).rglob("*") if ".part" in p.name]


def _start_simulation(out):
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepetpicker", "simulate", str(out), "--n", "6", "--shape",
         "48", "128", "128", "--classes", "1", "--n-particles", "4"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"))
    first = proc.stderr.readline()             # the first progress line: the job runs
    assert first.startswith("simulate"), first + proc.stderr.read()
    return proc


def _finish(proc):
    """The rest of the command's output and its exit. Read through the same text streams
    as the lines read before: ``communicate`` would read the pipes underneath them and miss
    what their ``readline`` already buffered."""
    stderr = proc.stderr.read()
    stdout = proc.stdout.read()
    proc.wait(timeout=120)
    return stdout, stderr


def test_ctrl_c_stops_with_status_130_and_keeps_finished_files(tmp_path):
    out = tmp_path / "sim"
    proc = _start_simulation(out)
    time.sleep(0.2)       # into the first tomogram (a Ctrl+C before it would keep nothing)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = _finish(proc)
    assert proc.returncode == 130, stderr
    assert "Stopping after the current step; press Ctrl+C again to stop at once." in stderr
    assert stderr.rstrip().endswith(INTERRUPTED)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert _temporary_files(out) == []
    from deepetpicker.io.tomogram import load_tomogram

    finished = sorted(p.name for p in (out / "raw").glob("*.mrc"))
    assert 1 <= len(finished) < 6                  # stopped early, after whole tomograms
    for name in finished:
        assert load_tomogram(out / "raw" / name).shape == (48, 128, 128)
        assert (out / "raw" / name).with_suffix(".coords").is_file()


def test_a_second_ctrl_c_stops_at_once_and_still_leaves_no_partial_file(tmp_path):
    out = tmp_path / "sim"
    proc = _start_simulation(out)
    proc.send_signal(signal.SIGINT)
    line = proc.stderr.readline()
    assert line.startswith("Stopping"), line
    proc.send_signal(signal.SIGINT)
    stdout, stderr = _finish(proc)
    assert proc.returncode == 130, stderr
    assert INTERRUPTED in stderr and "Traceback" not in stderr
    assert _temporary_files(out) == []


def test_ctrl_c_during_predict_lists_the_finished_tomograms(tmp_path, monkeypatch, capfd):
    import torch

    from deepetpicker.config import PreprocessConfig, TrainConfig
    from deepetpicker.io.tomogram import write_tomogram
    from deepetpicker.model.checkpoint import save_checkpoint
    from deepetpicker.model.resunet import ResUNet3D

    pre = PreprocessConfig(dset_name="toy", base_path=str(tmp_path), coord_path=str(tmp_path),
                           tomo_path=str(tmp_path), num_cls=1, label_diameter=6,
                           ocp_diameter=[10])
    cfg = TrainConfig.from_preprocess(pre, "0", "0", patch_size=16, padding_size=4,
                                      f_maps=[4, 8, 8, 8], device="cpu")
    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / "best.pth", ResUNet3D(num_classes=1,
                                                               f_maps=(4, 8, 8, 8)),
                              config=cfg.to_dict(), diameters=[10])
    rng = np.random.default_rng(0)
    tomograms = [write_tomogram(tmp_path / "in" / f"{name}.mrc",
                                rng.normal(size=(24, 40, 40)).astype(np.float32), 10.0)
                 for name in ("first", "second", "third")]

    show = ProgressPrinter.__call__

    def press_ctrl_c_after_the_first(self, event):
        show(self, event)
        if event.stage == "predict" and event.done == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ProgressPrinter, "__call__", press_ctrl_c_after_the_first)
    # as in a terminal, whatever the test runner inherited (a background job ignores SIGINT)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status = main(["predict", "--weights", str(weights), "--out", str(tmp_path / "picks"),
                       "--tomograms", *map(str, tomograms)])
        restored = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, inherited)
    out, err = capfd.readouterr()
    assert status == 130
    assert "Stopping after the current step" in err and INTERRUPTED in err
    assert out.startswith("Finished before the interruption:\nPicked particles in 1 "
                          "tomogram(s)")
    assert "first.coords" in out and "second" not in out
    assert sorted(p.name for p in (tmp_path / "picks").iterdir()) == [
        ".deepetpicker-outputs.json", ".deepetpicker-outputs.lock", "first.coords",
        "first.coords.json"]
    assert restored is signal.default_int_handler


@pytest.mark.parametrize("buffered", [True, False])
def test_output_piped_to_a_closed_reader_ends_quietly(tmp_path, buffered):
    # the reader closes the pipe before the command prints its summary, as `| head` does
    code = ("import sys, time\n"
            "time.sleep(1.0)\n"
            "from deepetpicker.cli import main\n"
            f"sys.exit(main(['simulate', {str(tmp_path / 'sim')!r}, '--n', '1', '--shape', "
            "'48', '64', '64', '--classes', '1', '--n-particles', '1']))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == cli.EXIT_BROKEN_PIPE
    assert "Traceback" not in stderr and "Broken" not in stderr and "Exception" not in stderr
    assert (tmp_path / "sim" / "raw" / "sim_00.mrc").is_file()


def test_gui_command_passes_tomogram_and_picks(monkeypatch):
    import gui.app

    seen = []
    monkeypatch.setattr(gui.app, "main", lambda argv: seen.append(argv) or 0)
    assert main(["gui", "--tomogram", "t.mrc", "--picks", "t.coords"]) == 0
    assert main(["gui", "cfg.py"]) == 0
    assert seen == [["--tomogram", "t.mrc", "--picks", "t.coords"], ["cfg.py"]]
    args = gui.app.build_parser().parse_args(seen[0])
    assert (args.tomogram, args.picks) == ("t.mrc", "t.coords")


# --------------------------------------------------------------------------------------------
# --help: every option says its default
# --------------------------------------------------------------------------------------------
def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_help_names_its_default():
    missing = []
    for name, sub in _subparsers().items():
        formatter = HelpFormatter(prog=f"deepetpicker {name}")
        for action in sub._actions:
            if (not action.option_strings or action.required or action.nargs == 0
                    or isinstance(action, argparse._HelpAction)):
                continue                      # positionals, required options and flags
            text = formatter._get_help_string(action) % {"default": action.default}
            if "default" not in text:
                missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, missing


def test_help_shows_defaults_that_match_the_library(capsys):
    from deepetpicker.config import TrainConfig
    from deepetpicker.simulate import DEFAULT_DATASET

    with pytest.raises(SystemExit):
        main(["train-config", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = {f.name: f.default for f in TrainConfig.__dataclass_fields__.values()}
    for option, key in [("--batch-size", "batch_size"), ("--patch-size", "patch_size"),
                        ("--pad-size", "padding_size"), ("--lr", "lr"),
                        ("--epochs", "max_epochs"), ("--loss", "loss"), ("--seed", "seed"),
                        ("--num-workers", "num_workers"), ("--device", "device")]:
        options = text.split(" options: ", 1)[1]
        shown = re.search(rf" {option} \S+ (?:(?! --).)*?\(default: ([^ ),:]+)",
                          options).group(1)
        assert shown == str(defaults[key]), (option, shown, defaults[key])

    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_DATASET['n']})" in text
    assert "(default: {} {} {})".format(*DEFAULT_DATASET["shape"]) in text
    assert f"(default: {DEFAULT_DATASET['classes']})" in text
    assert "--seed SEED random seed; the same seed gives the same files (default: 0)" in text
    assert "output folder (default: sample_data)" in text


# --------------------------------------------------------------------------------------------
# Config warnings
# --------------------------------------------------------------------------------------------
def test_config_warning_is_one_readable_line(tmp_path):
    path = config_with_unknown_key(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "deepetpicker", "train-config", str(path),
                           "--train-ids", "0", "--val-ids", "0", "-o",
                           str(tmp_path / "train.py")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        f"warning: {path}: unknown key 'lr_rate' = 0.1 is kept and written back but not "
        f"used; check its spelling against configs/README.md.")
    assert all(line.startswith(("warning: ", "note: ")) for line in proc.stderr.splitlines())


def test_the_warning_display_is_restored_after_main(tmp_path, capsys):
    import warnings

    before = warnings.showwarning
    assert main(["train-config", str(config_with_unknown_key(tmp_path)), "--train-ids", "0",
                 "--val-ids", "0", "-o", str(tmp_path / "train.py")]) == 0
    assert warnings.showwarning is before
    assert "warning: " in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Progress display
# --------------------------------------------------------------------------------------------
