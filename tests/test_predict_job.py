"""The inference job end to end: a tiny network trained here on simulated tomograms."""

import json

import mrcfile
import numpy as np
import pytest
import starfile
import torch

from deepetpicker.config import PreprocessConfig, TrainConfig
from deepetpicker.errors import DeepETPickerError
from deepetpicker.evaluate import evaluate_occupancy
from deepetpicker.io.picks import read_picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.model import ResUNet3D, probabilities, save_checkpoint
from deepetpicker.picking.tiling import scan
from deepetpicker.predict.job import cpu_tiles_per_pass, predict
from deepetpicker.preprocess.labels import paint_labels, paint_occupancy
from deepetpicker.progress import Cancelled, CancelToken, counted
from deepetpicker.simulate import simulate_tomogram

F1_FLOOR = 0.8
SPEC = [dict(name="globule", shape="globule", diameter=10)]


def simulate(seed):
    return simulate_tomogram((32, 64, 64), classes=SPEC, seed=seed, snr=0.3, n_vesicles=0,
                             n_gold=0, n_crowders=0, n_particles=14)


def make_config(tmp, **overrides):
    pre = PreprocessConfig(dset_name="toy", base_path=str(tmp), coord_path=str(tmp / "c"),
                           tomo_path=str(tmp / "t"), num_cls=1, label_diameter=6,
                           ocp_diameter=[10])
    settings = dict(patch_size=16, padding_size=4, f_maps=[4, 8, 8, 8], device="cpu")
    settings.update(overrides)
    return TrainConfig.from_preprocess(pre, "0", "0", **settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train a tiny 3D-ResUNet for 120 steps on two simulated tomograms (about 5 s)."""
    tmp = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    volumes, labels = [], []
    for seed in (0, 1):
        volume, picks, _ = simulate(seed)
        volumes.append(volume)
        labels.append(paint_labels(volume.shape, picks, 6, "gaussian").astype(np.float32))
    model = ResUNet3D(num_classes=1, f_maps=(4, 8, 8, 8))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    n = 16
    model.train()
    for _ in range(120):
        xs, ys = [], []
        for _ in range(8):
            i = rng.integers(2)
            z, y, x = (rng.integers(0, s - n + 1) for s in volumes[i].shape)
            xs.append(volumes[i][z:z + n, y:y + n, x:x + n])
            ys.append(labels[i][z:z + n, y:y + n, x:x + n])
        x = torch.from_numpy(np.stack(xs)[:, None])
        y = torch.from_numpy(np.stack(ys)[:, None])
        logits = model(x)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = dice + torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    weights = save_checkpoint(tmp / "tiny.pth", model, class_names=["globule"],
                              diameters=[10])
    # the held-out tomogram, saved as a raw reconstruction would be (not normalised)
    volume, truth, _ = simulate(2)
    raw = write_tomogram(tmp / "held_out.mrc", volume * 37.0 + 1000.0, voxel_size=10.0)
    occupancy = paint_occupancy(volume.shape, truth, [10])
    return dict(tmp=tmp, model=model, weights=weights, raw=raw, volume=volume, truth=truth,
                occupancy=occupancy, config=make_config(tmp))


def test_predict_picks_particles_and_writes_every_output(trained, tmp_path):
    events = []
    result = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                     out=tmp_path, progress=events.append, save_scores=True,
                     formats=("star", "coords"))
    assert result.outputs == [tmp_path / "held_out.coords"] and not result.failed
    assert result.sources == {tmp_path / "held_out.coords": trained["raw"]}
    assert result.pairs() == [(trained["raw"], tmp_path / "held_out.coords")]
    picks = read_picks(result.outputs[0])
    assert picks.has_scores and ((picks.scores > 0.3) & (picks.scores <= 1)).all()
    report = evaluate_occupancy(picks, trained["truth"], trained["occupancy"])
    assert report.f1 >= F1_FLOOR, report
    assert result.counts == {"held_out": {1: len(picks)}}
    # the sidecar records what made the picks
    sidecar = json.loads((tmp_path / "held_out.coords.json").read_text())
    assert (sidecar["t_seg"], sidecar["t_lm"], sidecar["t_dist"]) == (0.5, 0.1, [5.0])
    assert (sidecar["patch_size"], sidecar["pad_size"], sidecar["batch_size"]) == (16, 4, 8)
    assert sidecar["counts"] == {"1": len(picks)} and sidecar["shape"] == [32, 64, 64]
    assert sidecar["normalisation"]["mean"] == pytest.approx(1000.0, abs=0.5)
    # one class: each pick's class confidence is 1, in the sidecar and the STAR export
    assert sidecar["class_confidence"] == [1.0] * len(picks)
    star = starfile.read(result.exports[0])
    assert star["rlnMaxValueProbDistribution"].tolist() == [1.0] * len(picks)
    # score map: float16 probabilities, high where the picks are
    with mrcfile.open(tmp_path / "held_out_scores.mrc") as mrc:
        scores = mrc.data.copy()
        assert mrc.data.dtype == np.float16 and mrc.voxel_size.x == pytest.approx(10.0)
    assert scores.shape == (32, 64, 64) and 0 <= scores.min() and scores.max() <= 1
    zyx = np.rint(picks.zyx).astype(int)
    assert (scores[zyx[:, 0], zyx[:, 1], zyx[:, 2]] > 0.5).mean() > 0.9
    assert [p.name for p in result.exports] == ["particles.star"]
    stages = {e.stage for e in events}
    assert {"statistics", "scan", "peaks", "predict"} <= stages
    last = [e for e in events if e.stage == "predict"][-1]
    assert (last.done, last.total) == (1, 1)
    assert f"held_out.coords: {counted(len(picks), 'pick')}" in result.summary()


def _saved_map_and_normalised_volume(result, trained):
    """The score map ``predict`` wrote, and the held-out volume z-scored as a whole (what
    per-tile normalisation with the tomogram's statistics must equal)."""
    with mrcfile.open(result.score_maps[0]) as mrc:
        saved = mrc.data.copy()
    volume = trained["volume"]
    return saved, (volume - volume.mean()) / volume.std()


def test_tiles_are_normalised_on_the_fly_like_training(trained, tmp_path):
    cfg = make_config(tmp_path, padding_size=2)
    result = predict(cfg, trained["weights"], tomograms=[trained["raw"]], out=tmp_path,
                     save_scores=True, score_dtype="float32", batch_size=3,
                     picking={"t_seg": 0.6})
    saved, normalised = _saved_map_and_normalised_volume(result, trained)
    with torch.no_grad():
        direct = scan(normalised, lambda b: probabilities(trained["model"](b)), 16, 2)
    np.testing.assert_allclose(saved, direct[0], atol=2e-4)
    assert json.loads(result.sidecars[0].read_text())["t_seg"] == 0.6


def test_bad_tomograms_are_reported_and_the_others_processed(trained, tmp_path):
    (tmp_path / "notes.mrc").write_text("not a tomogram")
    flat = write_tomogram(tmp_path / "flat.mrc", np.ones((20, 20, 20), np.float32))
    missing = tmp_path / "missing.mrc"
    result = predict(trained["config"], trained["weights"],
                     tomograms=[tmp_path / "notes.mrc", trained["raw"], missing, flat],
                     out=tmp_path / "out")
    assert [p.name for p in result.outputs] == ["held_out.coords"]
    assert set(result.failed) == {str(tmp_path / "notes.mrc"), str(missing), str(flat)}
    assert "not found" in result.failed[str(missing)]
    assert "constant" in result.failed[str(flat)]
    assert "FAILED" in result.summary()
    with pytest.raises(DeepETPickerError, match="No tomogram could be processed.*missing.mrc"):
        predict(trained["config"], trained["weights"], tomograms=[missing], out=tmp_path)


def test_weights_that_do_not_match_the_config(trained, tmp_path):
    pre = PreprocessConfig(dset_name="toy", base_path=str(tmp_path), coord_path="c",
                           tomo_path="t", num_cls=2, label_diameter=6, ocp_diameter=[10, 12])
    two = TrainConfig.from_preprocess(pre, "0", "0", patch_size=16, padding_size=4,
                                      f_maps=[4, 8, 8, 8], device="cpu")
    with pytest.raises(DeepETPickerError, match=r"trained for 1 class\(es\) .* num_cls = 2"):
        predict(two, trained["weights"], tomograms=[trained["raw"]], out=tmp_path)
    wide = make_config(tmp_path, f_maps=[8, 16, 24, 36])
    with pytest.raises(DeepETPickerError, match=r"channels \[4, 8, 8, 8\] .* \[8, 16, 24, 36\]"):
        predict(wide, trained["weights"], tomograms=[trained["raw"]], out=tmp_path)
    with pytest.raises(DeepETPickerError, match="Pad size 8 is too large for patch size 16"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                out=tmp_path, pad=8)
    assert not list(tmp_path.glob("*.coords"))


def test_cpu_tiles_per_pass_bounds_memory_and_batches_small_tiles():
    assert cpu_tiles_per_pass([24, 48, 72, 108], 72) == 1      # 36 MB per feature map
    assert cpu_tiles_per_pass([24, 48, 72, 108], 48) == 2
    assert cpu_tiles_per_pass([8, 16, 24, 36], 40) == 8         # capped
    assert cpu_tiles_per_pass([8, 16, 24, 36], 72) == 2


def test_cancel_leaves_no_partial_output(trained, tmp_path):
    token = CancelToken()

    def progress(event):
        if event.stage == "scan" and event.done == 2:
            token.cancel()

    with pytest.raises(Cancelled) as stopped:
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                out=tmp_path, progress=progress, cancel=token)
    assert list(tmp_path.iterdir()) == [] and stopped.value.partial is None


def test_cancel_reports_the_tomograms_finished_before_it(trained, tmp_path):
    token = CancelToken()
    second = tmp_path / "in" / "second.mrc"
    second.parent.mkdir()
    second.write_bytes(trained["raw"].read_bytes())

    def progress(event):
        if event.stage == "scan" and event.item == "second" and event.done == 2:
            token.cancel()

    with pytest.raises(Cancelled) as stopped:
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"], second],
                out=tmp_path / "out", progress=progress, cancel=token)
    partial = stopped.value.partial
    assert [p.name for p in partial.outputs] == ["held_out.coords"]
    assert partial.pairs() == [(trained["raw"], tmp_path / "out" / "held_out.coords")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".deepetpicker-outputs.json", ".deepetpicker-outputs.lock", "held_out.coords",
        "held_out.coords.json"]
    assert sum(partial.counts["held_out"].values()) == len(
        read_picks(tmp_path / "out" / "held_out.coords"))


def test_one_model_load_for_many_tomograms_and_torchrun_split(trained, tmp_path, monkeypatch):
    import deepetpicker.model as model_module

    folder = tmp_path / "tomos"
    for name in ("a", "b", "c"):
        write_tomogram(folder / f"{name}.mrc", trained["volume"][:, :32, :32])
    loads = []
    real = model_module.load_checkpoint
    monkeypatch.setattr(model_module, "load_checkpoint",
                        lambda *a, **k: loads.append(a) or real(*a, **k))
    result = predict(trained["config"], trained["weights"], tomograms=[folder],
                     out=tmp_path / "all")
    assert [p.stem for p in result.outputs] == ["a", "b", "c"] and len(loads) == 1
    # a folder given: each output knows the file in it that it was picked in
    assert result.pairs() == [(folder / f"{n}.mrc", tmp_path / "all" / f"{n}.coords")
                              for n in ("a", "b", "c")]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    share = predict(trained["config"], trained["weights"], tomograms=[folder],
                    out=tmp_path / "rank1")
    assert [p.stem for p in share.outputs] == ["b"]


def test_bad_options_are_clear_errors(trained, tmp_path):
    cfg = trained["config"]
    with pytest.raises(DeepETPickerError, match="Unknown picking setting.*t_sge"):
        predict(cfg, trained["weights"], tomograms=[trained["raw"]], out=tmp_path,
                picking={"t_sge": 0.4})
    with pytest.raises(DeepETPickerError, match="Unknown pick format 'pdf'"):
        predict(cfg, trained["weights"], tomograms=[trained["raw"]], out=tmp_path,
                formats=("pdf",))
    with pytest.raises(DeepETPickerError, match="Checkpoint not found"):
        predict(cfg, tmp_path / "nope.pth", tomograms=[trained["raw"]], out=tmp_path)


def _as_original(state: dict) -> dict:
    """Our parameter names written back in the original program's Lightning naming."""
    out = {}
    for name, value in state.items():
        name = ("final_conv." + name[len("head."):]) if name.startswith("head.") else name
        name = name.replace(".block.", ".basic_module.").replace(".up.", ".upsampling.upsample.")
        out["model." + name.replace(".bn.", ".batchnorm.")] = value
    return out


def test_predict_needs_only_the_weights(trained, tmp_path):
    import argparse

    cfg = trained["config"]
    with_config = predict(cfg, trained["weights"], tomograms=[trained["raw"]],
                          out=tmp_path / "with_config")
    expected = read_picks(with_config.outputs[0])
    # our checkpoint holds its training config: no config file needed
    ours = save_checkpoint(tmp_path / "run" / "best.pth", trained["model"],
                           config=cfg.to_dict(), class_names=["globule"], diameters=[10])
    alone = predict(None, ours, tomograms=[trained["raw"]])
    assert alone.out_dir == tmp_path / "run" / "predictions"
    got = read_picks(alone.outputs[0])
    assert np.allclose(got.xyz, expected.xyz) and np.allclose(got.scores, expected.scores)
    # the original program's .ckpt: sizes from its hyper-parameters, diameters asked for
    ckpt = tmp_path / "original.ckpt"
    torch.save({"epoch": 9, "state_dict": _as_original(trained["model"].state_dict()),
                "hyper_parameters": {"args": argparse.Namespace(block_size=16, pad_size=[4],
                                                                num_classes=1)}}, ckpt)
    with pytest.raises(DeepETPickerError, match="--diameters"):
        predict(None, ckpt, tomograms=[trained["raw"]], out=tmp_path / "o")
    original = predict(None, ckpt, tomograms=[trained["raw"]], out=tmp_path / "orig",
                       diameters=[10])
    got = read_picks(original.outputs[0])
    # without its config file it does not say its weak label: scores over d / 4 of the
    # particle (2 voxels) instead of the label's reach, the same picks
    assert json.loads(original.sidecars[0].read_text())["score_radius"] == [2.0]
    radius = {"score_radius": 2}
    expected = read_picks(predict(cfg, trained["weights"], tomograms=[trained["raw"]],
                                  out=tmp_path / "radius2", picking=radius).outputs[0])
    assert np.allclose(got.xyz, expected.xyz) and np.allclose(got.scores, expected.scores)
    # a config given still overrides what the checkpoint holds
    merged = TrainConfig.from_dict(dict(cfg.to_dict(), t_dist=40.0))
    wide = predict(merged, ours, tomograms=[trained["raw"]], out=tmp_path / "cfg")
    assert json.loads(wide.sidecars[0].read_text())["t_dist"] == [40.0]
    assert len(read_picks(wide.outputs[0])) < len(expected)


def test_picking_values_are_refused_before_any_work(trained, tmp_path):
    events = []
    for picking, words in (({"t_seg": 2}, "t_seg = 2"), ({"t_lm": -0.1}, "t_lm = -0.1"),
                           ({"t_dist": -3}, "t_dist = -3"), ({"t_dist": "far"}, "far")):
        with pytest.raises(DeepETPickerError, match=words):
            predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                    out=tmp_path / "never", picking=picking, progress=events.append)
    assert events == [] and not (tmp_path / "never").exists()


def test_predict_command_without_a_config(trained, tmp_path, capsys):
    from deepetpicker.cli import main

    weights = save_checkpoint(tmp_path / "best.pth", trained["model"],
                              config=trained["config"].to_dict(), diameters=[10])
    assert main(["predict", "--weights", str(weights), "--tomograms", str(trained["raw"]),
                 "--out", str(tmp_path / "picks"), "--t-seg", "0.5"]) == 0
    assert len(read_picks(tmp_path / "picks" / "held_out.coords")) > 0
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": _as_original(trained["model"].state_dict())}, bare)
    capsys.readouterr()
    assert main(["predict", "--weights", str(bare), "--tomograms", str(trained["raw"]),
                 "--out", str(tmp_path / "bare")]) == 2
    err = capsys.readouterr().err
    assert "--diameters" in err and str(bare) in err and "Traceback" not in err
    assert main(["predict", "--weights", str(bare), "--tomograms", str(trained["raw"]),
                 "--out", str(tmp_path / "bare"), "--diameters", "10"]) == 0
    assert (tmp_path / "bare" / "held_out.coords").is_file()


def test_predict_never_replaces_a_users_picks_or_an_input(trained, tmp_path):
    """Tomograms and their hand-made .coords in one folder, picked into the same folder."""
    import shutil

    folder = tmp_path / "data"
    folder.mkdir()
    tomo = folder / "held_out.mrc"
    shutil.copy(trained["raw"], tomo)
    mine = folder / "held_out.coords"
    mine.write_text("1\t10\t10\t10\n")
    events = []
    for overwrite in (False, True):
        with pytest.raises(DeepETPickerError) as err:
            predict(trained["config"], trained["weights"], tomograms=[folder], out=folder,
                    overwrite=overwrite, progress=events.append)
        message = str(err.value)
        assert str(mine) in message and "not written by DeepETPicker" in message
        assert "another --out" in message
    assert mine.read_text() == "1\t10\t10\t10\n"
    assert not [e for e in events if e.stage in ("statistics", "scan")]
    assert sorted(p.name for p in folder.iterdir()) == ["held_out.coords", "held_out.mrc"]
    # an export named like an input tomogram is refused too, even with --overwrite
    with pytest.raises(DeepETPickerError, match="is an input"):
        predict(trained["config"], trained["weights"], tomograms=[tmp_path / "particles.star"],
                out=tmp_path, formats=("star",), overwrite=True)


def test_predict_outputs_of_an_earlier_run_need_overwrite_and_finished_ones_are_skipped(
        trained, tmp_path):
    out = tmp_path / "out"
    first = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                    out=out, formats=("star",))
    coords = out / "held_out.coords"
    before = coords.read_bytes()
    # the same weights and settings: the finished tomogram is skipped, no scan
    events = []
    again = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                    out=out, formats=("star",), progress=events.append)
    assert again.skipped == [coords] and again.outputs == [coords]
    assert again.sources == {coords: trained["raw"]}
    assert not [e for e in events if e.stage == "scan"]
    assert any("skipped" in (e.message or "") for e in events)
    assert again.counts == first.counts and coords.read_bytes() == before
    assert (out / "particles.star").is_file()
    # other settings would replace the earlier picks: refused without --overwrite
    with pytest.raises(DeepETPickerError, match="earlier DeepETPicker run.*--overwrite"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]], out=out,
                picking={"t_dist": 40.0})
    assert coords.read_bytes() == before
    merged = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                     out=out, picking={"t_dist": 40.0}, overwrite=True)
    assert merged.skipped == [] and len(read_picks(coords)) < len(read_picks(first.outputs[0])
                                                                  if False else before.decode()
                                                                  .splitlines())
    # --force picks again even with the same settings
    events.clear()
    predict(trained["config"], trained["weights"], tomograms=[trained["raw"]], out=out,
            picking={"t_dist": 40.0}, force=True, progress=events.append)
    assert [e for e in events if e.stage == "scan"]
    # picks corrected by hand and saved under the same name are the user's again
    coords.write_text("1\t5\t5\t5\n")
    with pytest.raises(DeepETPickerError, match="not written by DeepETPicker"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]], out=out,
                overwrite=True, force=True)
    assert coords.read_text() == "1\t5\t5\t5\n"


def test_predict_output_folder_is_checked_before_any_work(trained, tmp_path, monkeypatch):
    import tempfile

    events = []
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(DeepETPickerError, match="is a file, not a folder"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                out=blocker, progress=events.append)
    with pytest.raises(DeepETPickerError, match="a_file is a file"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                out=blocker / "sub", progress=events.append)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(DeepETPickerError, match="Cannot write in the output folder .*"
                                                "Permission denied"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                out=tmp_path / "locked", progress=events.append)
    assert not [e for e in events if e.stage in ("statistics", "scan")]


@pytest.mark.slow
def test_test_time_augmentation_averages_the_scans_records_it_and_reruns(trained, tmp_path):
    from deepetpicker.picking.tiling import TTA_SETS, with_tta

    cfg, weights, raw = trained["config"], trained["weights"], trained["raw"]
    out = tmp_path / "out"
    plain = predict(cfg, weights, tomograms=[raw], out=out)
    assert json.loads(plain.sidecars[0].read_text())["tta"] == []
    # TTA switched on: not the same picks, so picked again (with --overwrite) and recorded
    events = []
    tta = predict(cfg, weights, tomograms=[raw], out=out, tta=True, overwrite=True,
                  save_scores=True, score_dtype="float32", progress=events.append)
    assert tta.skipped == [] and [e for e in events if e.stage == "scan"]
    sidecar = json.loads(tta.sidecars[0].read_text())
    names = [t.name for t in TTA_SETS["flips"]]
    assert sidecar["tta"] == names and len(names) == 8
    assert sidecar["fingerprint"]["tta"] == names
    picks = read_picks(tta.outputs[0])
    assert evaluate_occupancy(picks, trained["truth"], trained["occupancy"]).f1 >= F1_FLOOR
    # the score map is the mean of the network's flipped-scored-flipped-back tiles
    saved, normalised = _saved_map_and_normalised_volume(tta, trained)
    with torch.no_grad():
        direct = scan(normalised, lambda b: probabilities(trained["model"](b)), 16, 4)
        averaged = scan(normalised, with_tta(lambda b: probabilities(trained["model"](b)),
                                             TTA_SETS["flips"]), 16, 4)
    np.testing.assert_allclose(saved, averaged[0], atol=2e-4)
    assert np.abs(saved - direct[0]).max() > 1e-3          # TTA did change the scores
    # the same TTA again: skipped; TTA toggled off or another set: picked again
    again = predict(cfg, weights, tomograms=[raw], out=out, tta="flips", save_scores=True)
    assert again.skipped == [tta.outputs[0]]
    off = predict(cfg, weights, tomograms=[raw], out=out, overwrite=True)
    assert off.skipped == [] and json.loads(off.sidecars[0].read_text())["tta"] == []
    assert read_picks(off.outputs[0]).xyz.tolist() == read_picks(plain.outputs[0]).xyz.tolist()
    with pytest.raises(DeepETPickerError, match="'spin' is not known"):
        predict(cfg, weights, tomograms=[raw], out=tmp_path / "never", tta="spin")
    assert not (tmp_path / "never").exists()


def test_predict_command_passes_the_tta_options(monkeypatch, tmp_path):
    import deepetpicker.predict.job as job_module
    from deepetpicker.cli import main

    calls = []

    def fake_predict(*args, **kwargs):
        calls.append(kwargs["tta"])
        return job_module.PredictResult(out_dir=tmp_path)

    monkeypatch.setattr(job_module, "predict", fake_predict)
    base = ["predict", "--weights", "w.pth", "--tomograms", "t.mrc"]
    for extra in ([], ["--tta"], ["--tta-set", "full"], ["--tta", "--tta-set", "flips"]):
        assert main(base + extra) == 0
    assert calls == [False, True, "full", "flips"]


def test_localize_comes_from_the_config_and_the_option(trained, tmp_path):
    from deepetpicker.picking.settings import PickSettings

    cfg = TrainConfig.from_dict(dict(trained["config"].to_dict(), localize="foreground"))
    assert PickSettings.from_config(cfg).localize == "foreground"
    assert PickSettings.from_config(cfg, localize="class").localize == "class"
    result = predict(cfg, trained["weights"], tomograms=[trained["raw"]], out=tmp_path)
    assert json.loads(result.sidecars[0].read_text())["localize"] == "foreground"
    with pytest.raises(DeepETPickerError, match="localize"):
        TrainConfig.from_dict(dict(trained["config"].to_dict(), localize="both")).validate()
    with pytest.raises(DeepETPickerError, match="localize = 'both'"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                out=tmp_path / "x", picking={"localize": "both"})


def test_tuned_score_thresholds_are_used_printed_recorded_and_overridden(trained, tmp_path,
                                                                          capsys):
    from deepetpicker.cli import main

    plain = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                    out=tmp_path / "plain")
    scores = read_picks(plain.outputs[0]).scores
    cut = float(np.median(scores))                         # a threshold that drops about half
    tuned = save_checkpoint(tmp_path / "tuned.pth", trained["model"], class_names=["globule"],
                            diameters=[10], score_thresholds=[cut],
                            threshold_rule="localisation")
    events = []
    kept = predict(trained["config"], tuned, tomograms=[trained["raw"]], out=tmp_path / "kept",
                   progress=events.append)
    picks = read_picks(kept.outputs[0])
    assert len(picks) == int((scores >= cut).sum()) < len(scores)
    assert (picks.scores >= cut).all()
    assert any(f"class 1 >= {cut:.2f}" in (e.message or "") for e in events)
    sidecar = json.loads(kept.sidecars[0].read_text())
    assert sidecar["min_score"] == [pytest.approx(cut)]
    assert sidecar["fingerprint"]["picking"]["min_score"] == [pytest.approx(cut)]
    # an explicit threshold wins over the tuned one: in the library and on the command line
    everything = predict(trained["config"], tuned, tomograms=[trained["raw"]],
                         out=tmp_path / "all", picking={"min_score": 0})
    assert len(read_picks(everything.outputs[0])) == len(scores)
    def cli(name, value):
        assert main(["predict", "--weights", str(tuned), "--tomograms", str(trained["raw"]),
                     "--out", str(tmp_path / name), "--min-score", value]) == 0
        return read_picks(tmp_path / name / "held_out.coords").scores

    every = cli("cli_all", "0")
    middle = float(np.median(every))
    strict = cli("cli_strict", f"{middle:.6f}")
    assert 0 < len(strict) == int((every >= round(middle, 6)).sum()) < len(every)
    capsys.readouterr()
    assert main(["predict", "--weights", str(tuned), "--tomograms", str(trained["raw"]),
                 "--out", str(tmp_path / "bad"), "--min-score", "1.5"]) == 2
    assert "min_score = 1.5 is outside [0, 1)" in capsys.readouterr().err


def test_thresholds_tuned_for_class_f1_by_an_earlier_version_are_not_used(trained, tmp_path):
    """A checkpoint whose thresholds do not name the localisation rule (tuned for class F1,
    which drops found particles of an uncertain class) keeps every pick, and says so."""
    plain = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                    out=tmp_path / "plain", picking={"min_score": 0})
    scores = read_picks(plain.outputs[0]).scores
    old = save_checkpoint(tmp_path / "old.pth", trained["model"], class_names=["globule"],
                          diameters=[10], score_thresholds=[float(np.median(scores))])
    events = []
    kept = predict(trained["config"], old, tomograms=[trained["raw"]], out=tmp_path / "old",
                   progress=events.append)
    assert len(read_picks(kept.outputs[0])) == len(scores)
    assert any("tuned for class F1 by an earlier version" in (e.message or "") for e in events)
    assert json.loads(kept.sidecars[0].read_text())["min_score"] is None


def test_bf16_precision_gives_the_fp32_picks_and_says_which_ran(trained, tmp_path):
    from deepetpicker.errors import DeepETPickerError
    from deepetpicker.io.picks import read_sidecar

    runs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        events = []
        result = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                         out=out, precision=precision, progress=events.append)
        runs[precision] = read_picks(result.outputs[0])
        assert read_sidecar(result.outputs[0])["precision"] == precision
        assert any("network arithmetic" in e.message and
                   ("bfloat16" if precision == "bf16" else "float32") in e.message
                   for e in events)
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert len(fp32) == len(bf16) and (fp32.classes == bf16.classes).all()
    assert np.abs(fp32.xyz - bf16.xyz).max() < 0.5           # voxels
    assert np.abs(fp32.scores - bf16.scores).max() < 0.02
    # the fp32 picks made before are not taken for bf16 ones, nor the other way round
    again = predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                    out=tmp_path / "fp32", precision="bf16", overwrite=True)
    assert again.skipped == []
    with pytest.raises(DeepETPickerError, match="precision 'half' is not known"):
        predict(trained["config"], trained["weights"], tomograms=[trained["raw"]],
                out=tmp_path / "x", precision="half")
