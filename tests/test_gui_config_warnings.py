"""Config warnings in the desktop application read exactly as the command line prints them."""

import logging
import warnings

from conftest import config_with_unknown_key

import gui.app
from deepetpicker.config import ConfigWarning, load_preprocess_config
from gui import dialogs as gui_dialogs


def test_loading_a_config_shows_its_warnings_in_one_box(tmp_path, dialogs):
    path = config_with_unknown_key(tmp_path)
    cfg, loaded = gui_dialogs.load_config_file(None, load_preprocess_config, "Load", str(path))
    assert cfg is not None and loaded == path and cfg.extra == {"lr_rate": 0.1}
    assert dialogs.shown == [(
        "warning", "Config warnings",
        f"warning: {path}: unknown key 'lr_rate' = 0.1 is kept and written back but not used; "
        f"check its spelling against configs/README.md.")]
    # the same file loaded into the next tab at once: no second box
    gui_dialogs.load_config_file(None, load_preprocess_config, "Load", str(path))
    assert len(dialogs.shown) == 1


def test_the_application_log_has_the_same_line(caplog):
    before = warnings.showwarning
    hook = gui.app.log_config_warnings()
    try:
        with caplog.at_level(logging.WARNING, logger="deepetpicker.gui"):
            hook("cfg.py: unknown key 'x' = 1 is kept and written back but not used; check its "
                 "spelling against configs/README.md.", ConfigWarning, "config.py", 370)
    finally:
        warnings.showwarning = before
    assert [r.getMessage() for r in caplog.records] == [
        "warning: cfg.py: unknown key 'x' = 1 is kept and written back but not used; check "
        "its spelling against configs/README.md."]
