"""Start the desktop application: ``deepetpicker-gui [CONFIG]`` or ``deepetpicker gui [CONFIG]``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from deepetpicker import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepetpicker-gui", description="DeepETPicker desktop application")
    parser.add_argument("config", nargs="?", help="a preprocessing or training config to load")
    parser.add_argument("--tomogram", help="open this tomogram in Particle Visualization")
    parser.add_argument("--picks", help="with --tomogram: picks to show and edit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def create_window(config: Optional[str] = None, tomogram: Optional[str] = None,
                  picks: Optional[str] = None, settings=None):
    """The main window with ``config`` loaded and ``tomogram`` (and ``picks``) shown."""
    from gui.main_window import MainWindow

    window = MainWindow(settings=settings)
    if config:
        window.open_config(config)
    if tomogram:
        window.show_in_viewer(tomogram, picks or "")
    return window


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the application until its window closes; returns the exit status."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    window.show()
    if not args.tomogram:
        window.viewer_tab.restore_last_session()
    return int(app.exec_())


if __name__ == "__main__":
    sys.exit(main())
