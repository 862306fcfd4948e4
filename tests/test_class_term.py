"""Telling kinds apart: the cross-entropy added to the Dice loss brings back a kind that the
network has started to call background, which the Dice loss alone never does."""

import numpy as np
import pytest
import torch

from deepetpicker.config import PreprocessConfig
from deepetpicker.io.picks import Picks, write_picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.preprocess.job import preprocess
from deepetpicker.train.job import Trainer

from train_fixtures import place, train_config

DIAMETER = 8


def ball_or_shell(rng, shape, centres, classes):
    """Noise with two kinds of the same size: a dense ball (class 1) and a hollow shell
    (class 2)."""
    zz, yy, xx = np.indices(shape)
    volume = rng.normal(0.0, 0.4, shape)
    for (z, y, x), kind in zip(centres, classes):
        r = np.sqrt((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2)
        if kind == 1:
            volume -= 2.0 * np.exp(-r ** 2 / (2 * (DIAMETER / 3.0) ** 2))
        else:
            volume -= 2.0 * np.exp(-(r - DIAMETER / 2.6) ** 2 / (2 * 0.9 ** 2))
    return volume.astype(np.float32)


@pytest.fixture(scope="module")
def two_kinds(tmp_path_factory):
    """Three tomograms of balls and shells, labelled with one shared 5-voxel label."""
    root = tmp_path_factory.mktemp("two_kinds")
    rng = np.random.default_rng(0)
    shape = (24, 48, 48)
    for t in range(3):
        centres = place(rng, shape, 8, DIAMETER, margin=DIAMETER // 2 + 1)
        classes = np.arange(len(centres)) % 2 + 1
        write_tomogram(root / f"tomo{t}.mrc", ball_or_shell(rng, shape, centres, classes), 10.0)
        write_picks(root / f"tomo{t}.coords", Picks(classes, centres[:, ::-1].astype(float)))
    pre = PreprocessConfig(dset_name="kinds", base_path=str(root / "ds"), coord_path=str(root),
                           tomo_path=str(root), num_cls=2, label_diameter=5,
                           ocp_diameter=[DIAMETER, DIAMETER])
    preprocess(pre)
    return pre


def _train_from_a_lost_class(pre, weight: float) -> dict:
    """Train 20 epochs from a network that gives the shells (class 2) almost no probability,
    the state a short training falls into when it first calls a kind background; the last
    validation row."""
    cfg = train_config(pre, train_ids="0,1", val_ids="2", dset_name=f"weight{weight}",
                       max_epochs=20, init="scratch", ema_decay=0.0, class_loss_weight=weight)
    trainer = Trainer(cfg, torch.device("cpu"))
    with torch.no_grad():
        trainer.net.head.bias[2] -= 6.0
    for epoch in range(cfg.max_epochs):
        trainer.train_epoch(epoch)
    return trainer.validate(cfg.max_epochs - 1)


@pytest.mark.slow
def test_the_class_term_brings_back_a_kind_the_dice_loss_has_lost(two_kinds):
    dice_only = _train_from_a_lost_class(two_kinds, 0.0)
    assert dice_only["class_f1_2"] == 0.0                 # the shells are never named
    both = _train_from_a_lost_class(two_kinds, 1.0)
    assert both["loc_f1"] == 1.0 and both["class_f1_2"] >= 0.8 and both["class_f1"] >= 0.8
