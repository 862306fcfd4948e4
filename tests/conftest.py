"""Shared test set-up: Qt runs offscreen and torch uses one thread, so tests behave the same
on a laptop, a workstation and a 2-core CI machine."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass

#: Fixtures shared by many test modules (offscreen Qt, recorded message boxes, small data,
#: a tiny two-class network).
pytest_plugins = ["gui_fixtures", "train_fixtures"]


def config_with_unknown_key(folder):
    """A preprocess config file in ``folder`` with one misspelt key (``lr_rate`` = 0.1)."""
    path = folder / "pre.py"
    path.write_text(
        'pre_config={"dset_name": "toy", "base_path": "%s", "coord_path": "%s", '
        '"coord_format": ".coords", "tomo_path": "%s", "tomo_format": ".mrc", "num_cls": 1, '
        '"label_type": "gaussian", "label_diameter": 7, "ocp_type": "sphere", '
        '"ocp_diameter": "7", "norm_type": "standardization", "lr_rate": 0.1}\n'
        % (folder / "ds", folder, folder))
    return path
