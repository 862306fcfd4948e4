"""The command line: instant help, lazy heavy imports, clean errors without tracebacks."""

import subprocess
import sys
import time

import pytest

from deepetpicker.cli import ProgressPrinter, build_parser, main
from deepetpicker.jobs import Progress

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


def test_gui_command_passes_tomogram_and_picks(monkeypatch):
    import gui.app

    seen = []
    monkeypatch.setattr(gui.app, "main", lambda argv: seen.append(argv) or 0)
    assert main(["gui", "--tomogram", "t.mrc", "--picks", "t.coords"]) == 0
    assert main(["gui", "cfg.py"]) == 0
    assert seen == [["--tomogram", "t.mrc", "--picks", "t.coords"], ["cfg.py"]]
    args = gui.app.build_parser().parse_args(seen[0])
    assert (args.tomogram, args.picks) == ("t.mrc", "t.coords")
