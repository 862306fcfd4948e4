"""Start the desktop application: ``deepetpicker-gui [CONFIG]`` or ``deepetpicker gui [CONFIG]``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from deepetpicker import __version__

if TYPE_CHECKING:
    from PyQt5.QtCore import QSettings

    from gui.main_window import MainWindow


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepetpicker-gui", description="DeepETPicker desktop application")
    parser.add_argument("config", nargs="?", help="a preprocessing or training config to load")
    parser.add_argument("--tomogram", help="open this tomogram in Particle Visualization")
    parser.add_argument("--picks", help="with --tomogram: picks to show and edit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def create_window(config: Optional[str] = None, tomogram: Optional[str] = None,
                  picks: Optional[str] = None, settings: Optional[QSettings] = None
                  ) -> MainWindow:
    """The main window with ``config`` loaded and ``tomogram`` (and ``picks``) shown."""
    from gui.main_window import MainWindow

    window = MainWindow(settings=settings)
    if config:
        window.open_config(config)
    if tomogram:
        window.show_in_viewer(tomogram, picks or "")
    return window


def install_excepthook(window: MainWindow) -> Callable:
    """Keep the application alive on an unexpected error in an event handler.

    PyQt5 aborts the process on an exception that reaches Qt, which would lose unsaved picks.
    The hook logs the traceback, writes the autosave of the picks, and shows the error in a
    dialog; the window stays usable. Returns the hook (also set as ``sys.excepthook``).
    """
    import traceback

    from gui import dialogs

    log = logging.getLogger("deepetpicker.gui")

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        saved = None
        try:
            saved = window.viewer_tab.document.autosave_now()
        except Exception:  # the hook itself must never raise
            log.exception("autosave after an unexpected error failed")
        note = f" Your unsaved picks were written to {saved}." if saved else ""
        try:
            dialogs.show_error(window, "Unexpected error",
                               f"{exc_type.__name__}: {exc}\n\nThe application keeps running; "
                               f"the full report is in the log.{note}")
        except Exception:
            log.exception("could not show the error dialog")

    sys.excepthook = hook
    return hook


def log_config_warnings() -> Callable:
    """Write each ConfigWarning to the log as the line the command line prints (``warning:
    <file>: ...``), not in Python's format; other warnings as before. Returns the hook."""
    import warnings

    from deepetpicker.config import ConfigWarning, warning_line

    original = warnings.showwarning
    log = logging.getLogger("deepetpicker.gui")

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ConfigWarning):
            log.warning("%s", warning_line(message))
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    return show


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the application until its window closes; returns the exit status."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_config_warnings()
    from PyQt5.QtCore import QSettings, Qt
    from PyQt5.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
        app = QApplication(sys.argv[:1])
    app.setApplicationName("DeepETPicker")
    app.setOrganizationName("DeepETPicker")
    settings = QSettings()
    window = create_window(args.config, args.tomogram, args.picks, settings)
    install_excepthook(window)
    window.show()
    if not args.tomogram:
        window.viewer_tab.restore_last_session()
    return int(app.exec_())


if __name__ == "__main__":
    sys.exit(main())
