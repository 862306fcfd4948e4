"""The demo end to end, on a small simulated dataset (the README's main command, shrunk)."""

import json

from deepetpicker.cli import main
from deepetpicker.config import load_train_config
from deepetpicker.demo import run_demo
from deepetpicker.io.picks import read_picks


def test_demo_runs_every_step_and_reports_where_outputs_are(tmp_path):
    events = []
    result = run_demo(tmp_path / "demo", epochs=1, device="cpu", shape=(48, 96, 96),
                      n_particles=8, progress=events.append, patch_size=24, padding_size=4,
                      batch_size=4)
    stages = {e.stage for e in events}
    assert {"simulate", "train", "epoch", "scan", "predict"} <= stages, stages
    # the held-out tomogram was picked and scored against its truth
    assert result.picks.name == "sim_03.coords" and result.picks.is_file()
    picks = read_picks(result.picks)
    if len(picks):           # one epoch of a tiny network may not find anything yet
        assert picks.scores is not None
        assert (picks.scores >= 0).all() and (picks.scores <= 1).all()
    report = json.loads((result.out_dir / "evaluation" / "evaluation.json").read_text())
    assert report["tomograms"] == ["sim_03"]
    occ = report["occupancy"]
    assert occ["RR"] == len(picks) and occ["TP"] + occ["FN"] == occ["n_truth"] > 0
    assert 0.0 <= result.f1 <= 1.0 and result.f1 == occ["F1"]
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
    again = run_demo(tmp_path / "demo", epochs=1, device="cpu", shape=(48, 96, 96),
                     n_particles=8, patch_size=24, padding_size=4, batch_size=4)
    assert again.picks == result.picks and again.picks.is_file()
    assert raw.stat().st_mtime_ns == stamp and mine.read_text() == "mine"


def test_demo_rejects_zero_epochs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "0"]) != 0
    assert "at least one epoch" in capsys.readouterr().err


def test_demo_checks_the_device_before_any_work(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["demo", "--out", str(tmp_path / "out"), "--device", "cuda"]) != 0
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
