"""Starting weights: the pretrained light network, a checkpoint given as ``init``, or random
weights; the ``init`` key of the training config; the pretraining script's smoke run."""

import csv
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from deepetpicker.config import LIGHT_F_MAPS, format_config, load_train_config
from deepetpicker.errors import DeepETPickerError
from deepetpicker.model import ResUNet3D, pretrained, save_checkpoint
from deepetpicker.model.checkpoint import read_checkpoint
from deepetpicker.model.pretrained import load_pretrained, packaged_weights, start_weights
from deepetpicker.progress import Reporter
from deepetpicker.train.job import Trainer, train

from train_fixtures import make_preprocessed, train_config

ROOT = Path(__file__).resolve().parents[1]
HEAD = {"head.weight", "head.bias"}


def fake_pretrained(path, num_classes=1, f_maps=LIGHT_F_MAPS, seed=1, **kwargs):
    """A checkpoint of a network whose every tensor holds random values (BatchNorm statistics
    too, so that no tensor equals a fresh network's by chance)."""
    torch.manual_seed(seed)
    net = ResUNet3D(num_classes=num_classes, f_maps=f_maps, **kwargs)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            else:
                tensor.fill_(7)
    save_checkpoint(path, net, pretraining={"script": "scripts/pretrain.py", "seed": seed,
                                            "steps": 10, "curve": [{"step": 10, "f1": 0.5}]})
    return net


def same(a, b):
    return tuple(a.shape) == tuple(b.shape) and torch.equal(a.cpu(), b.cpu())


def split_head(fresh: dict, src: ResUNet3D) -> dict:
    """The head a K-class network gets from a one-class ``src``: background logit 0, every
    class the source's particle logit minus log K, plus the fresh head's class rows less
    their mean over the classes (``fresh``: the network's random head before loading)."""
    k = fresh["weight"].shape[0] - 1
    weight, bias = fresh["weight"].clone(), fresh["bias"].clone()
    weight[0], bias[0] = 0.0, 0.0
    rows = fresh["weight"][1:]
    weight[1:] = src.head.weight.detach()[0] + (rows - rows.mean(dim=0, keepdim=True))
    bias[1:] = float(src.head.bias.detach()[0]) - math.log(k)
    return {"head.weight": weight, "head.bias": bias}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrained") / "light.pth"
    return path, fake_pretrained(path)


def test_weights_load_into_more_classes_with_the_head_split_from_the_particle_channel(source):
    path, src = source
    torch.manual_seed(5)
    net = ResUNet3D(num_classes=3, f_maps=LIGHT_F_MAPS)
    fresh_head = {k: v.clone() for k, v in net.head.state_dict().items()}
    info = load_pretrained(net, path)
    theirs, ours = src.state_dict(), net.state_dict()
    for name, tensor in ours.items():
        if name not in HEAD:
            assert same(tensor, theirs[name]), name
    assert tuple(net.head.weight.shape) == (4, LIGHT_F_MAPS[0], 1, 1, 1)
    expected = split_head(fresh_head, src)
    assert torch.allclose(net.head.weight, expected["head.weight"])
    assert torch.allclose(net.head.bias, expected["head.bias"])
    assert info["loaded"] == len(ours) - 2 and info["total"] == len(ours)
    assert sorted(info["skipped"]) == sorted(HEAD) and info["head"] == "split"
    assert (info["num_classes"], info["source_classes"]) == (3, 1)
    assert info["pretraining"] == {"script": "scripts/pretrain.py", "seed": 1, "steps": 10}


def test_one_class_takes_every_tensor_head_included(source):
    path, src = source
    net = ResUNet3D(num_classes=1, f_maps=LIGHT_F_MAPS)
    info = load_pretrained(net, path)
    theirs = src.state_dict()
    assert all(same(t, theirs[n]) for n, t in net.state_dict().items())
    assert info["head"] == "copied" and info["skipped"] == []
    assert info["loaded"] == info["total"] == len(theirs)


def test_a_network_that_does_not_fit_is_an_error_naming_the_file(source, tmp_path):
    path, _ = source
    with pytest.raises(DeepETPickerError) as err:
        load_pretrained(ResUNet3D(num_classes=3), path)
    text = str(err.value)
    assert str(path) in text
    assert "f_maps [8, 16, 24, 36] in the file but [24, 48, 72, 108] in this network" in text
    other = tmp_path / "flat.pth"
    fake_pretrained(other, coord_conv=False)
    with pytest.raises(DeepETPickerError, match="coord_conv False in the file but True"):
        start_weights(ResUNet3D(num_classes=2, f_maps=LIGHT_F_MAPS), str(other))
    with pytest.raises(DeepETPickerError, match=r"^init = '.*missing\.pth': Checkpoint not "
                                                r"found"):
        start_weights(ResUNet3D(f_maps=LIGHT_F_MAPS), str(tmp_path / "missing.pth"))


def test_pretrained_falls_back_to_random_weights_with_a_reason(source, tmp_path, monkeypatch):
    path, _ = source
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    assert packaged_weights() == tmp_path / "light.pth"
    torch.manual_seed(3)
    net = ResUNet3D(num_classes=2, f_maps=LIGHT_F_MAPS)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    info = start_weights(net, "pretrained")
    assert info["weights"] == "random"
    assert info["message"] == (f"Starting from random weights: no pretrained weights are "
                               f"installed ({tmp_path / 'light.pth'} not found; "
                               f"docs/pretraining.md tells how to make them).")
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    info = start_weights(ResUNet3D(num_classes=2), "pretrained", packaged=path)
    assert info["weights"] == "random" and "exist only for the light network" in info["message"]
    info = start_weights(ResUNet3D(num_classes=2, f_maps=LIGHT_F_MAPS), "pretrained",
                         packaged=path)
    assert info["weights"] == "pretrained"
    assert info["message"] == ("Started from the pretrained light network (153 of 155 tensors; "
                               "head split from its particle channel into 2 classes).")


# -- the training config's init ---------------------------------------------------------------
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    pre, _ = make_preprocessed(tmp_path_factory.mktemp("toy"), n_tomos=2, n_particles=6)
    return pre


@pytest.fixture(scope="module")
def toy2(tmp_path_factory):
    pre, _ = make_preprocessed(tmp_path_factory.mktemp("toy2"), n_tomos=2, n_particles=6,
                               num_cls=2)
    return pre


def test_init_key_is_checked_read_and_written_back_only_when_given(toy, tmp_path):
    cfg = train_config(toy, f_maps=LIGHT_F_MAPS)
    assert cfg.init == "pretrained" and "init" not in cfg.to_dict()
    given = train_config(toy, init="Scratch")
    assert given.init == "scratch" and given.to_dict()["init"] == "scratch"
    path = tmp_path / "train.py"
    path.write_text(format_config(train_config(toy, init=str(tmp_path / "w.pth"))))
    assert load_train_config(path).init == str(tmp_path / "w.pth")
    with pytest.raises(DeepETPickerError) as err:
        load_train_config(path, check_paths=True)
    assert "key 'init'" in str(err.value) and "does not exist" in str(err.value)
    with pytest.raises(DeepETPickerError) as err:
        train_config(toy, init="pretrianed")
    assert "key 'init' = 'pretrianed': expected 'pretrained'" in str(err.value)
    assert "'scratch'" in str(err.value) and ".pth" in str(err.value)


def _fresh_net(cfg):
    torch.manual_seed(int(cfg.seed))
    return ResUNet3D(num_classes=cfg.num_cls, f_maps=cfg.f_maps)


def test_scratch_and_a_missing_packaged_file_keep_the_seeded_random_weights(
        toy, source, tmp_path, monkeypatch):
    path, _ = source
    (tmp_path / "light.pth").write_bytes(path.read_bytes())
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    cfg = train_config(toy, f_maps=LIGHT_F_MAPS, init="scratch")
    fresh = _fresh_net(cfg).state_dict()
    logs = []
    trainer = Trainer(cfg, torch.device("cpu"), report=Reporter(logs.append))
    assert all(same(t, fresh[n]) for n, t in trainer.net.state_dict().items())
    assert trainer.init_info["weights"] == "random"
    assert "Starting from random weights (init 'scratch')." in [e.message for e in logs]

    (tmp_path / "light.pth").unlink()
    cfg = train_config(toy, f_maps=LIGHT_F_MAPS)
    logs = []
    trainer = Trainer(cfg, torch.device("cpu"), report=Reporter(logs.append))
    assert all(same(t, fresh[n]) for n, t in trainer.net.state_dict().items())
    lines = [e.message for e in logs if "random weights" in e.message]
    assert lines == [f"Starting from random weights: no pretrained weights are installed "
                     f"({tmp_path / 'light.pth'} not found; docs/pretraining.md tells how to "
                     f"make them)."]


def test_the_packaged_light_network_is_the_default_start(toy2, source, tmp_path, monkeypatch):
    path, src = source
    (tmp_path / "light.pth").write_bytes(path.read_bytes())
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    cfg = train_config(toy2, f_maps=LIGHT_F_MAPS, ema_decay=0.9)
    fresh = _fresh_net(cfg).state_dict()
    logs = []
    trainer = Trainer(cfg, torch.device("cpu"), report=Reporter(logs.append))
    theirs = src.state_dict()
    head = split_head({"weight": fresh["head.weight"], "bias": fresh["head.bias"]}, src)
    for net in (trainer.net, trainer.ema_net):   # the average starts from the same weights
        for name, tensor in net.state_dict().items():
            if name in HEAD:
                assert torch.allclose(tensor, head[name]), name
            else:
                assert same(tensor, theirs[name]), name
    assert ("Started from the pretrained light network (153 of 155 tensors; head split from "
            "its particle channel into 2 classes).") in [e.message for e in logs]


@pytest.mark.slow
def test_training_from_a_checkpoint_records_it_and_resume_keeps_the_record(toy2, tmp_path):
    start = tmp_path / "start.pth"
    src = fake_pretrained(start, num_classes=1, seed=4)
    cfg = train_config(toy2, dset_name="from_path", f_maps=LIGHT_F_MAPS, init=str(start),
                       max_epochs=1)
    trainer = Trainer(cfg, torch.device("cpu"))
    theirs = src.state_dict()
    assert all(same(t, theirs[n]) for n, t in trainer.net.state_dict().items()
               if n not in HEAD)
    events = []
    result = train(cfg, progress=events.append)
    record = read_checkpoint(result.last_checkpoint)["init"]
    assert record["weights"] == "checkpoint" and record["source"] == str(start)
    assert record["head"] == "split" and record["num_classes"] == 2
    assert record["message"] in [e.message for e in events]
    # a resumed run keeps its weights and the record of where they started
    more = train_config(toy2, dset_name="from_path", f_maps=LIGHT_F_MAPS, init="scratch",
                        max_epochs=2)
    events = []
    resumed = train(more, progress=events.append, resume=result.last_checkpoint)
    assert not [e for e in events if e.message.startswith(("Started from", "Starting from"))]
    assert read_checkpoint(resumed.last_checkpoint)["init"] == record


# -- the pretraining script ---------------------------------------------------------------------
def _script(monkeypatch):
    spec = importlib.util.spec_from_file_location("pretrain_script",
                                                  ROOT / "scripts" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)   # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def _curve(path):
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k != "hours"} for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_pretrain_smoke_run_writes_weights_that_load_and_resumes_on_the_same_curve(
        tmp_path, capsys, monkeypatch):
    script = _script(monkeypatch)
    straight = tmp_path / "straight"
    assert script.main(["--out", str(straight), "--tiny", "--steps", "3", "--save-every", "2",
                        "--device", "cpu", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "step 2/3: loss" in printed and "step 3/3: loss" in printed and "F1" in printed
    weights = straight / "light.pth"
    data = read_checkpoint(weights)
    meta = data["pretraining"]
    assert meta["script"] == "scripts/pretrain.py" and meta["seed"] == 2 and meta["steps"] == 3
    assert meta["data"]["shape"] == [32, 48, 48] and [r["step"] for r in meta["curve"]] == [2, 3]
    assert meta["final_loss"] == meta["curve"][-1]["loss"] and 0.0 <= meta["final_f1"] <= 1.0
    net = ResUNet3D(num_classes=3, f_maps=LIGHT_F_MAPS)
    info = load_pretrained(net, weights)
    assert info["head"] == "split" and info["loaded"] == info["total"] - 2
    assert all(same(t, data["state_dict"][n]) for n, t in net.state_dict().items()
               if n not in HEAD)

    stopped = tmp_path / "stopped"
    args = ["--out", str(stopped), "--tiny", "--steps", "3", "--save-every", "2",
            "--device", "cpu", "--seed", "2"]
    assert script.main(args + ["--stop-after", "0"]) == 0
    assert not (stopped / "light.pth").exists() and len(_curve(stopped / "curve.csv")) == 1
    assert script.main(args) == 1          # a second fresh run into the same folder is refused
    assert "add --resume" in capsys.readouterr().err
    other_seed = [a if a != "2" else "3" for a in args]
    assert script.main(other_seed + ["--resume"]) == 1
    assert "written with other settings" in capsys.readouterr().err
    assert script.main(args + ["--resume"]) == 0
    assert _curve(stopped / "curve.csv") == _curve(straight / "curve.csv")
    resumed = read_checkpoint(stopped / "light.pth")["state_dict"]
    assert all(torch.equal(v, data["state_dict"][k]) for k, v in resumed.items())


def test_the_shipped_light_network_loads_with_its_provenance():
    """The file in the package: the light network, one class, made by scripts/pretrain.py,
    with the curve it reached; it loads into a 3-class light network whose head shares the
    particle probability equally among the classes."""
    path = packaged_weights()
    assert path.is_file(), f"{path} is not installed"
    assert path.stat().st_size < 3_000_000          # small enough to live in the package
    stored = torch.load(path, map_location="cpu", weights_only=True)
    meta = stored["pretraining"]
    assert meta["script"] == "scripts/pretrain.py" and meta["curve"][-1]["step"] == meta["steps"]
    assert meta["curve"][-1]["f1"] == meta["final_f1"] >= 0.9
    net = ResUNet3D(num_classes=3, f_maps=LIGHT_F_MAPS)
    info = start_weights(net, "pretrained")
    assert info["weights"] == "pretrained" and info["head"] == "split"
    assert info["loaded"] == info["total"] - 2
    model, _ = pretrained.load_checkpoint(path, "cpu")
    theirs = model.state_dict()
    for name, tensor in net.state_dict().items():
        if name not in HEAD:
            assert same(tensor, theirs[name]), name
    # a dark blob (dense protein) on noise: the particle probability is about the
    # pretrained network's, and the three classes share it unevenly (their rows differ, so
    # the features can learn to tell them apart)
    torch.manual_seed(0)
    grid = torch.stack(torch.meshgrid(*[torch.arange(24.0)] * 3, indexing="ij"))
    blob = torch.exp(-((grid - 12.0) ** 2).sum(0) / (2 * 4.0 ** 2))
    x = (-1.5 * blob + 0.5 * torch.randn(24, 24, 24))[None, None]
    net.eval()
    with torch.no_grad():
        particle = torch.sigmoid(model(x))[0, 0]
        scores = torch.softmax(net(x), dim=1)[0]
    assert particle[12, 12, 12] > 0.5
    assert (1.0 - scores[0] - particle).abs().mean() < 0.05
    share = scores[1:, 12, 12, 12] / (1.0 - scores[0, 12, 12, 12])
    assert float(share.max() - share.min()) > 1e-3
    rows = net.head.weight.detach()[1:]
    assert torch.allclose(rows.mean(dim=0), model.head.weight.detach()[0], atol=1e-6)
