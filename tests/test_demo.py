"""The demo end to end, on a small simulated dataset (the README's main command, shrunk)."""

import json

import numpy as np
import pytest

from deepetpicker.cli import main
from deepetpicker.config import load_train_config
from deepetpicker.demo import run_demo
from deepetpicker.evaluate import evaluate_occupancy
from deepetpicker.io.dataset import OCCUPANCY_DIR
from deepetpicker.io.picks import Picks, read_picks, write_picks
from deepetpicker.io.tomogram import load_tomogram


@pytest.mark.slow
def test_demo_runs_every_step_and_reports_where_outputs_are(tmp_path, monkeypatch):
    events = []
    result = run_demo(tmp_path / "demo", epochs=1, device="cpu", shape=(48, 96, 96),
                      n_particles=8, progress=events.append, patch_size=24, padding_size=4,
                      batch_size=4)
    stages = {e.stage for e in events}
    assert {"simulate", "train", "epoch", "scan", "predict"} <= stages, stages
    # the held-out tomogram was picked and scored against its truth
    assert result.picks.name == "sim_03.coords" and result.picks.is_file()
    picks = read_picks(result.picks)
    report = json.loads((result.out_dir / "evaluation" / "evaluation.json").read_text())
    assert report["tomograms"] == ["sim_03"]
    occ = report["occupancy"]
    # the F1 the demo prints is the SHREC rule applied to the picks file it wrote
    pre = result.out_dir / "sample_data"
    truth = read_picks(pre / "coords" / "sim_03.coords")
    occupancy = load_tomogram(pre / OCCUPANCY_DIR / "sim_03.mrc").data
    own = evaluate_occupancy(picks, truth, np.asarray(occupancy), dilate=True).to_dict()
    assert occ["RR"] == len(picks) and occ["n_truth"] == len(truth) == own["n_truth"] > 0
    assert result.f1 == occ["F1"] == pytest.approx(own["F1"])
    # the training config it wrote is a valid config that the program can load again
    cfg = load_train_config(result.train_config)
    assert cfg.train_set_ids == [0, 1] and cfg.val_set_ids == [2] and cfg.max_epochs == 1
    assert result.weights.is_file() and result.slices_png.stat().st_size > 1000
    assert list((result.out_dir / "predictions").glob("*.star"))
    text = result.summary()
    assert "F1" in text and str(result.picks) in text and str(result.slices_png) in text

    # run again in the same folder: the simulation is kept, the demo's own outputs replaced,
    # a file of the user's beside them is not
    raw = result.out_dir / "sample_data" / "raw" / "sim_00.mrc"
    stamp = raw.stat().st_mtime_ns
    mine = result.out_dir / "predictions" / "notes.txt"
    mine.write_text("mine")
    # this time the picks are the truth plus two picks far from every particle, so the F1
    # the demo reports must be 2n / (2n + 2)
    decoys = _far_points(truth, occupancy.shape, 2)
    monkeypatch.setattr("deepetpicker.predict.job.predict", _predicting(truth, decoys))
    again = run_demo(tmp_path / "demo", epochs=1, device="cpu", shape=(48, 96, 96),
                     n_particles=8, patch_size=24, padding_size=4, batch_size=4)
    assert again.picks == result.picks and len(read_picks(again.picks)) == len(truth) + 2
    n = len(truth)
    assert again.f1 == pytest.approx(2 * n / (2 * n + 2))
    assert raw.stat().st_mtime_ns == stamp and mine.read_text() == "mine"


def _far_points(truth, shape, count):
    """``count`` voxel positions (x, y, z) at least 20 voxels from every particle."""
    grid = np.stack(np.meshgrid(*[np.arange(2, s - 2, 4) for s in shape[::-1]],
                                indexing="ij"), -1).reshape(-1, 3).astype(float)
    far = np.min(np.linalg.norm(grid[:, None] - truth.xyz[None], axis=-1), axis=1) > 20
    assert far.sum() >= count
    return grid[far][:count]


def _predicting(truth, decoys):
    """predict as the demo calls it, its picks then replaced by ``truth`` + ``decoys``."""
    from deepetpicker.predict import job

    real = job.predict

    def fake(*args, **kwargs):
        result = real(*args, **kwargs)
        rows = Picks(np.r_[truth.classes, [1] * len(decoys)], np.r_[truth.xyz, decoys],
                     np.r_[np.full(len(truth), 0.9), [0.8] * len(decoys)])
        write_picks(result.outputs[0], rows)
        return result

    return fake


def test_demo_rejects_zero_epochs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "0"]) != 0
    assert "at least one epoch" in capsys.readouterr().err


def test_demo_checks_the_device_before_any_work(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["demo", "--out", str(tmp_path / "out"), "--device", "cuda"]) != 0
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
