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
