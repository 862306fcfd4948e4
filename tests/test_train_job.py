"""The training job: outputs, progress, reproducibility, resume, cancellation, errors."""

import csv
import json
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.model import ResUNet3D, load_checkpoint
from deepetpicker.progress import Cancelled, CancelToken
from deepetpicker.runtime import resolve_device
from deepetpicker.train.job import read_metrics, train

from train_fixtures import make_preprocessed, train_config


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    pre, _ = make_preprocessed(tmp_path_factory.mktemp("toy"), n_tomos=2, n_particles=6)
    return pre


@pytest.mark.slow
def test_training_writes_checkpoints_logs_and_progress(toy):
    cfg = train_config(toy, dset_name="outputs", max_epochs=2, ema_decay=0.0)
    events = []
    result = train(cfg, progress=events.append)
    run = toy.run_dir.parent / "outputs"
    assert result.run_dir == run
    assert sorted(p.name for p in run.iterdir()) == ["best.pth", "last.pth", "metrics.csv",
                                                     "metrics.json"]
    assert result.epochs == 2 and [row["epoch"] for row in result.history] == [1, 2]
    first, second = result.history
    assert second["train_loss"] < first["train_loss"]  # learning
    for row in result.history:
        # precision counts whole picks, and F1 is their harmonic mean with recall
        precision, recall, found = row["precision"], row["recall"], row["precision"] * row[
            "n_picks"]
        assert found == pytest.approx(round(found)) and row["val_loss"] > 0 and row["lr"] > 0
        assert row["f1"] == row["f1_1"] == pytest.approx(
            2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    # best.pth is chosen on the mean of the localisation F1 and the class F1 of the picks the
    # detection thresholds tuned on validation keep
    assert result.best_f1 == max((row["loc_f1"] + row["class_f1"]) / 2
                                 for row in result.history)
    for row in result.history:       # one class: naming it is finding it
        assert row["class_f1"] == row["class_f1_1"] == pytest.approx(row["loc_f1"])
        assert row["loc_f1"] >= row["loc_f1_all"]
    best_row = result.history[result.best_epoch - 1]
    assert result.score_thresholds == [best_row["min_score_1"]]

    rows = list(csv.DictReader(result.log_csv.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) == pytest.approx(second["train_loss"])
    assert {"val_loss", "precision", "recall", "f1", "f1_1", "lr", "epoch_time_s", "f1_1_min",
            "f1_1_std"} <= set(rows[0])
    for row in result.history:       # one validation tomogram: no spread
        assert row["f1_1_min"] == row["f1_1"] and row["f1_1_std"] == 0.0
    assert json.loads(result.log_json.read_text()) == result.history
    assert read_metrics(run) == result.history

    # 6 particle patches, batch 4: 2 steps per epoch; one train event per step
    steps = [e for e in events if e.stage == "train"]
    assert [e.done for e in steps] == [1, 2, 3, 4] and {e.total for e in steps} == {4}
    assert steps[-1].eta_s == pytest.approx(0.0) and "loss" in steps[0].metrics
    epochs = [e for e in events if e.stage == "epoch"]
    assert [(e.done, e.total) for e in epochs] == [(1, 2), (2, 2)]
    assert epochs[-1].metrics["f1"] == second["f1"]
    assert any(e.stage == "validate" for e in events)

    model, meta = load_checkpoint(result.last_checkpoint)
    assert meta["epoch"] == 2 and meta["class_names"] == ["class1"] and meta["diameters"] == [6]
    assert meta["config"]["num_cls"] == 1 and meta["config"]["patch_size"] == 16
    assert meta["model_args"]["f_maps"] == [4, 8, 12, 16]
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), result.model(x))
    _, best_meta = load_checkpoint(result.best_checkpoint)
    assert best_meta["epoch"] == result.best_epoch


def test_read_metrics_of_a_folder_without_a_run_and_of_a_broken_file(tmp_path):
    assert read_metrics(tmp_path) == []
    (tmp_path / "metrics.json").write_text('[{"epoch": 1, "train_loss": 0.5, "f1": null}, '
                                           '{"note": "no epoch"}, {"epoch": 2.0}]')
    assert read_metrics(tmp_path) == [{"epoch": 1, "train_loss": 0.5, "f1": None},
                                      {"epoch": 2}]
    (tmp_path / "metrics.json").write_text('[{"epoch": 1, "train_loss": 0.')
    with pytest.raises(DeepETPickerError, match=r"metrics of the run in .*metrics\.json"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text('{"epoch": 1}')
    with pytest.raises(DeepETPickerError, match="not a list of epochs"):
        read_metrics(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("ema_decay", [0.0, 0.999])
def test_seeded_runs_repeat_and_a_cancelled_run_resumes_on_the_same_curve(toy, ema_decay):
    name = f"resume_{ema_decay}"
    cfg = train_config(toy, dset_name=name, max_epochs=3, background_fraction=0.25,
                       ema_decay=ema_decay)
    first = train(cfg)
    straight = first.history

    token = CancelToken()

    def stop_after_first_epoch(event):
        if event.stage == "epoch":
            token.cancel()

    with pytest.raises(Cancelled):
        train(cfg, progress=stop_after_first_epoch, cancel=token)
    run = cfg.run_dir
    assert len(list((run / "old").iterdir())) == 1  # the first run's files were kept aside
    _, meta = load_checkpoint(run / "last.pth")
    assert meta["epoch"] == 1 and len(meta["history"]) == 1
    assert ("ema_state_dict" in meta) == (ema_decay > 0)
    assert len(list(csv.DictReader((run / "metrics.csv").open()))) == 1

    again = train(cfg, resume=run / "last.pth")
    resumed = again.history
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    for a, b in zip(straight, resumed):
        assert a["train_loss"] == b["train_loss"]  # exactly: same data, same arithmetic
        assert a["val_loss"] == b["val_loss"] and a["f1"] == b["f1"]
    # the validated weights (the moving average, if any) are the same to the last bit
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key

    # more epochs than the run was planned for: the schedule is stretched, training goes on
    longer = train_config(toy, dset_name=name, max_epochs=4, background_fraction=0.25,
                          ema_decay=ema_decay)
    events = []
    extended = train(longer, resume=run / "last.pth", progress=events.append).history
    assert [r["epoch"] for r in extended] == [1, 2, 3, 4]
    # the old schedule had reached its floor; the stretched one trains epoch 4 above it
    lrs = [e.metrics["lr"] for e in events if e.stage == "train"]
    assert len(lrs) == 2 and lrs[0] > 10 * extended[2]["lr"]
    assert any("stretched" in e.message for e in events)


def _differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_best_checkpoint_holds_the_moving_average_and_last_holds_both(toy, tmp_path):
    # validated once, after epoch 2: best.pth and last.pth describe the same moment
    cfg = train_config(toy, dset_name="ema", max_epochs=2, val_every=2, ema_decay=0.999)
    result = train(cfg)
    assert result.best_epoch == 2
    last = torch.load(result.last_checkpoint, weights_only=True)
    best = torch.load(result.best_checkpoint, weights_only=True)
    trained, average = last["state_dict"], last["ema_state_dict"]
    assert _differs(trained, average)                       # 4 steps: the average lags
    assert last["weights"] == "trained" and best["weights"] == "moving average"
    assert _same(best["state_dict"], average) and _same(best["raw_state_dict"], trained)
    assert _same(result.model.state_dict(), average)
    # BatchNorm statistics are averaged too; the batch counter is copied
    bn = "encoders.0.block.conv1.bn.running_mean"
    assert bn in average and not torch.equal(average[bn], trained[bn])
    counters = [k for k in average if k.endswith("num_batches_tracked")]
    assert counters and all(int(average[k]) == int(trained[k]) == 4 for k in counters)

    # predict reads best.pth's state_dict: the average, and the picks validation counted
    from deepetpicker.predict.job import predict

    model, meta = load_checkpoint(result.best_checkpoint)
    assert meta["ema_decay"] == 0.999 and _same(model.state_dict(), average)
    picked = predict(cfg, result.best_checkpoint, tomograms=[toy.tomo_path + "/tomo1.mrc"],
                     out=tmp_path)
    assert picked.counts["tomo1"] == {1: result.history[-1]["n_picks_tuned"]}

    # ema_decay 0 is the plain run: best.pth holds the trained weights, nothing else
    plain = train(train_config(toy, dset_name="no_ema", max_epochs=2, val_every=2,
                               ema_decay=0.0))
    last = torch.load(plain.last_checkpoint, weights_only=True)
    best = torch.load(plain.best_checkpoint, weights_only=True)
    assert "ema_state_dict" not in last and "raw_state_dict" not in best
    assert _same(best["state_dict"], last["state_dict"])
    assert _same(plain.model.state_dict(), last["state_dict"])
    # the average does not change training itself, only what is validated and kept
    assert _same(last["state_dict"], trained)
    assert [r["train_loss"] for r in plain.history] == [r["train_loss"] for r in result.history]


def test_moving_average_update_validation_and_layout(toy):
    from deepetpicker.train.job import Trainer

    cfg = train_config(toy, dset_name="ema_unit", ema_decay=0.9)
    cfg.validate()
    trainer = Trainer(cfg, torch.device("cpu"))
    assert [trainer.ema_decay_at(s) for s in (0, 1, 10, 1000)] == pytest.approx(
        [0.1, 2 / 11, 11 / 20, 0.9])
    ema = trainer.ema_net
    assert ema is not trainer.net and ema.channels_last
    conv = "encoders.0.block.conv1.conv.weight"
    assert ema.state_dict()[conv].is_contiguous(memory_format=torch.channels_last_3d)
    assert all(not p.requires_grad for p in ema.parameters())

    before = {k: v.clone() for k, v in ema.state_dict().items()}
    images, targets = next(iter(trainer.loader(trainer.train_set, 0, True)))
    trainer.global_step = 3                       # decay min(0.9, 4 / 13)
    trainer.train_step(images, targets)
    trained, average = trainer.net.state_dict(), ema.state_dict()
    d = 4 / 13
    for key in (conv, "encoders.0.block.conv1.bn.running_var"):
        assert torch.allclose(average[key], d * before[key] + (1 - d) * trained[key],
                              atol=1e-6)
    assert average[conv].is_contiguous(memory_format=torch.channels_last_3d)

    # validation runs on the average: its loss is that of the average's weights
    on_average = trainer.validate(0)
    trainer.average = None                        # now validate the trained weights
    on_trained = trainer.validate(0)
    assert on_average["val_loss"] != on_trained["val_loss"]
    trainer.net.load_state_dict(average)
    assert trainer.validate(0)["val_loss"] == pytest.approx(on_average["val_loss"], abs=1e-6)


def test_f1_spread_over_validation_tomograms():
    from deepetpicker.train.validation import spread_over_tomograms

    def result(*f1s):
        return SimpleNamespace(per_class=[
            SimpleNamespace(class_id=c, f1=f, n_truth=0 if f is None else 5)
            for c, f in enumerate(f1s, start=1)])

    results = [result(0.5, 1.0, None), result(1.0, 1.0, None), result(0.9, None, None)]
    assert spread_over_tomograms(results, 1) == pytest.approx(
        {"f1_1_min": 0.5, "f1_1_std": float(torch.tensor([0.5, 1.0, 0.9]).std(
            unbiased=False))})
    # tomograms without particles of a class do not count for it
    assert spread_over_tomograms(results, 2) == {"f1_2_min": 1.0, "f1_2_std": 0.0}
    assert spread_over_tomograms(results, 3) == {"f1_3_min": None, "f1_3_std": None}


@pytest.mark.slow
def test_cancel_stops_inside_a_long_step(toy, tmp_path):
    pre, _ = make_preprocessed(tmp_path, n_tomos=1, shape=(32, 40, 40), n_particles=4)
    cfg = train_config(pre, "0", "0", f_maps=[24, 48, 72, 108], patch_size=32, max_epochs=2)
    token = CancelToken()
    asked = {}

    def cancel_soon(event):
        if event.stage == "train" and not asked:
            asked["t"] = None

            def fire():
                asked["t"] = time.monotonic()
                token.cancel()
            threading.Timer(0.3, fire).start()

    with pytest.raises(Cancelled):
        train(cfg, progress=cancel_soon, cancel=token)
    latency = time.monotonic() - asked["t"]
    assert latency < 1.0
    assert not (cfg.run_dir / "last.pth").exists()  # no epoch finished, nothing half-written
    assert not [p for p in cfg.run_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_several_classes(tmp_path):
    pre, _ = make_preprocessed(tmp_path, n_tomos=1, n_particles=6, num_cls=3)
    cfg = train_config(pre, "0", "0", max_epochs=8, batch_size=3)
    result = train(cfg)
    row = result.history[result.best_epoch - 1]
    model, meta = load_checkpoint(result.best_checkpoint)
    assert model.out_channels == 4 and meta["diameters"] == [6, 6, 6]
    # each class's validation scores are those of its own picks: predict the validation
    # tomogram with the same weights and score every class by the same rule
    from deepetpicker.io.picks import read_picks
    from deepetpicker.matching import evaluate_distance
    from deepetpicker.predict.job import predict
    from deepetpicker.train.job import MATCH_FRACTION

    picked = predict(cfg, result.best_checkpoint, tomograms=[pre.tomo_path + "/tomo0.mrc"],
                     out=tmp_path / "picks", picking={"min_score": 0})
    truth = read_picks(pre.coord_path + "/tomo0.coords")
    scored = evaluate_distance(read_picks(picked.outputs[0]), truth, radii=[3.0] * 3,
                               fraction=MATCH_FRACTION, num_cls=3)
    assert sum(picked.counts["tomo0"].values()) == row["n_picks"] > 0
    for c in scored.per_class:
        assert (row[f"precision_{c.class_id}"], row[f"recall_{c.class_id}"],
                row[f"f1_{c.class_id}"]) == pytest.approx((c.precision, c.recall, c.f1))


def test_clear_errors(toy, tmp_path):
    with pytest.raises(DeepETPickerError, match=r"val_set_ids = \[7\]: id 7 is not in"):
        train(train_config(toy, "0", "7", dset_name="err"))
    with pytest.raises(DeepETPickerError, match=r"patch_size 48 is larger than tomogram 0"):
        train(train_config(toy, "0", "1", dset_name="err", patch_size=48, padding_size=4))
    moved = train_config(toy, "0", "1", dset_name="err", label_path=str(tmp_path / "labels"))
    with pytest.raises(DeepETPickerError, match=r"labels not found \(label_path\).*"
                                                r"run preprocessing"):
        train(moved)
    with pytest.raises(DeepETPickerError, match="no CUDA GPU.*--device cpu"):
        train(train_config(toy, "0", "1", dset_name="err"), device="cuda")

    empty, _ = make_preprocessed(tmp_path / "empty", n_tomos=1, n_particles=0)
    with pytest.raises(DeepETPickerError, match=r"train_set_ids = \[0\]: the training "
                                                r"tomograms hold no particles"):
        train(train_config(empty, "0", "0"))

    weights_only = tmp_path / "weights.pth"
    torch.save(ResUNet3D(f_maps=(4, 8, 12, 16)).state_dict(), weights_only)
    with pytest.raises(DeepETPickerError, match="Cannot resume from .*weights only"):
        train(train_config(toy, "0", "1", dset_name="err"), resume=weights_only)


def test_out_of_memory_says_lower_the_batch_size(toy, monkeypatch):
    def explode(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ResUNet3D, "forward", explode)
    with pytest.raises(DeepETPickerError, match=r"ran out of memory with batch_size 4.*lower "
                                                r"batch_size \(e.g. to 2\)"):
        train(train_config(toy, dset_name="oom"))


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeepETPickerError, match="'tpu' is not known"):
        resolve_device("tpu")


@pytest.mark.slow
def test_validation_picks_by_the_rule_predict_uses(toy, tmp_path, monkeypatch):
    """best.pth is chosen on the picks users get: validation and predict turn score maps
    into picks with one function and the same settings (the label diameter, 6, differs from
    the particle diameter, 10, that sets the merge distance), and count the same picks."""
    import deepetpicker.picking.settings as picking
    from deepetpicker.predict.job import predict

    calls = []
    original = picking.picks_from_scores

    def recording(scores, diameters, settings=None, **kwargs):
        picks = original(scores, diameters, settings, **kwargs)
        calls.append((kwargs.get("tomo_name"), list(diameters), settings, len(picks)))
        return picks

    monkeypatch.setattr(picking, "picks_from_scores", recording)
    cfg = train_config(toy, dset_name="same_rule", max_epochs=3, ocp_diameter=[10])
    result = train(cfg)
    validated = [c for c in calls if c[0] == "tomo1"]
    assert len(validated) == 3                             # once per epoch
    row = result.history[result.best_epoch - 1]
    assert validated[result.best_epoch - 1][3] == row["n_picks"] > 0
    calls.clear()
    raw = toy.tomo_path + "/tomo1.mrc"                     # the validation tomogram, raw
    everything = predict(cfg, result.best_checkpoint, tomograms=[raw], out=tmp_path / "all",
                         picking={"min_score": 0})
    (_, diameters, settings, count), = calls
    assert (diameters, replace(settings, min_score=None)) == validated[0][1:3]
    assert settings.t_dist is None and everything.counts["tomo1"] == {1: row["n_picks"]}
    sidecar = json.loads(everything.sidecars[0].read_text())
    assert sidecar["t_dist"] == [5.0]                      # ceil(10 / 2), not ceil(6 / 2)

    # by default predict keeps the picks above the score threshold tuned at the best epoch
    tuned = [row["min_score_1"]]
    assert result.score_thresholds == tuned
    assert torch.load(result.best_checkpoint, weights_only=True)["score_thresholds"] == tuned
    calls.clear()
    picked = predict(cfg, result.best_checkpoint, tomograms=[raw], out=tmp_path / "tuned")
    (_, _, settings, count), = calls
    assert settings.min_score == pytest.approx(tuple(tuned))
    assert picked.counts["tomo1"] == {1: row["n_picks_tuned"]} and count == row["n_picks_tuned"]
    assert json.loads(picked.sidecars[0].read_text())["min_score"] == \
        pytest.approx(tuned)


def test_train_config_command_checks_ids_and_keeps_hand_edited_configs(toy, tmp_path, capsys):
    from deepetpicker.cli import main
    from deepetpicker.config import save_config

    pre_path = save_config(toy, tmp_path / "pre.py")
    out = tmp_path / "train.py"
    assert main(["train-config", str(pre_path), "--train-ids", "0", "--val-ids", "99",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "val_set_ids = [99]: id 99 is not in the dataset" in err and "0: tomo0" in err
    assert not out.exists()
    assert main(["train-config", str(pre_path), "--train-ids", "0", "--val-ids", "1",
                 "-o", str(out)]) == 0
    assert main(["train-config", str(pre_path), "--train-ids", "1", "--val-ids", "0",
                 "-o", str(out)]) == 0                     # our own file: replaced
    out.write_text("# tuned by hand\n" + out.read_text())
    for target in (out, pre_path):
        before = target.read_text()
        assert main(["train-config", str(pre_path), "--train-ids", "0", "--val-ids", "1",
                     "-o", str(target)]) == 2
        assert "never replaced" in capsys.readouterr().err and target.read_text() == before


def test_training_checks_the_run_folder_and_tiny_tomograms_first(toy, tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("x")
    cfg = train_config(toy, dset_name="blocked")
    cfg.base_path = str(tmp_path)                        # base/runs is a file
    with pytest.raises(DeepETPickerError, match=r"run folder .*runs is a file"):
        train(cfg)
    from deepetpicker.train.dataset import TomoEntry, check_patch_fits

    tiny = TomoEntry(0, "tiny", None, None, None, (12, 40, 40), None)
    with pytest.raises(DeepETPickerError) as err:
        check_patch_fits([tiny], 16)
    assert "smaller than 16 voxels" in str(err.value) and "patch_size 8" not in str(err.value)
