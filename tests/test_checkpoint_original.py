"""The original program's Lightning checkpoints load without running anything from them.

The files are built here from real objects the way Lightning 1.1 with torch 1.6/1.7 wrote
them: the AdamW state after a real step, the OneCycleLR state with its bound ``anneal_func``
(torch 1.7 kept it in ``state_dict()``; pickling it stores ``getattr(<scheduler>, name)`` and
with the scheduler its AdamW object and ``defaultdict`` state), callbacks keyed by a class
of a package that is not installed where the file is read, ``hyper_parameters`` holding an
``argparse.Namespace``, in the zip format (torch >= 1.6) and the legacy format.
"""

import argparse
import collections
import contextlib
import os
import pickle
import sys
import types
import zipfile

import pytest
import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.model import ResUNet3D, load_checkpoint, read_checkpoint, save_checkpoint
from deepetpicker.model.checkpoint import _Placeholder, original_to_ours

TINY = (4, 8, 12, 16)

# Our parameter-name fragments and the original program's (the inverse of original_to_ours).
_OURS_TO_ORIGINAL = ((".block.", ".basic_module."), (".up.", ".upsampling.upsample."),
                     (".bn.", ".batchnorm."))


def _original_names(state: dict) -> dict:
    renamed = {}
    for name, value in state.items():
        if name.startswith("head."):
            name = "final_conv." + name[len("head."):]
        for ours, theirs in _OURS_TO_ORIGINAL:
            name = name.replace(ours, theirs)
        renamed["model." + name] = value.detach().clone()
    assert original_to_ours(renamed).keys() == state.keys()
    return renamed


def _trained_network(seed: int):
    """A tiny network after one real AdamW step, its optimiser and its one-cycle schedule."""
    torch.manual_seed(seed)
    net = ResUNet3D(f_maps=TINY)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.99),
                                  weight_decay=0.01)
    # the original program's schedule (train.py, configure_optimizers)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-3, total_steps=60, pct_start=0.1, anneal_strategy="cos",
        div_factor=30, final_div_factor=100)
    net.train()
    loss = torch.sigmoid(net(torch.randn(2, 1, 16, 16, 16))).mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
    net.eval()
    return net, optimizer, scheduler


@contextlib.contextmanager
def _modules_installed_while_saving(names):
    """Empty modules under ``names`` so pickle can name classes "defined" in them; removed
    afterwards, so the reader finds nothing to import."""
    saved = {name: sys.modules.get(name) for name in names}
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:  # pragma: no cover - Lightning installed here
                sys.modules[name] = module


def _foreign_class(module: str, name: str, base=object) -> type:
    cls = type(name, (base,), {"__module__": module, "__qualname__": name})
    setattr(sys.modules[module], name, cls)
    return cls


_LIGHTNING = ("pytorch_lightning", "pytorch_lightning.callbacks",
              "pytorch_lightning.callbacks.model_checkpoint",
              "pytorch_lightning.callbacks.early_stopping", "pytorch_lightning.utilities",
              "pytorch_lightning.utilities.parsing")


@contextlib.contextmanager
def _saved_as_on_gpu():
    """While active, ``torch.save`` tags every storage with ``cuda:0``, as on a GPU.

    ``register_package`` is PyTorch's hook for device tags: its tagger decides the location
    string written for each storage (the zip format's ``persistent_id`` and the legacy storage
    table alike), so the file is byte-for-byte what a GPU run writes apart from the values.
    The deserializer declines (returns None), so loading goes through PyTorch's own rules.
    """
    entry = (-1000, lambda storage: "cuda:0", lambda storage, location: None)
    torch.serialization.register_package(*entry)
    try:
        yield
    finally:
        torch.serialization._package_registry.remove(entry)


def _lightning_checkpoint(net, optimizer, scheduler, extras: bool) -> dict:
    ckpt = {"epoch": 41, "global_step": 984, "pytorch-lightning_version": "1.1.0",
            "state_dict": _original_names(net.state_dict())}
    if not extras:
        return ckpt
    lr_state = scheduler.state_dict()
    # torch 1.7's OneCycleLR.state_dict() held anneal_func, the scheduler's bound method
    # _annealing_cos (a staticmethod today); pickle stores a bound method as
    # getattr(<scheduler object>, "_annealing_cos").
    lr_state["anneal_func"] = types.MethodType(type(scheduler)._annealing_cos, scheduler)
    ModelCheckpoint = _foreign_class("pytorch_lightning.callbacks.model_checkpoint",
                                     "ModelCheckpoint")
    EarlyStopping = _foreign_class("pytorch_lightning.callbacks.early_stopping",
                                   "EarlyStopping")
    ckpt.update({
        "callbacks": {
            ModelCheckpoint: {"monitor": "cls_pr_alpha1.0", "best_model_score": torch.tensor(0.81),
                              "best_model_path": "/data/runs/version_0/epoch=41.ckpt",
                              "current_score": torch.tensor(0.79), "dirpath": "/data/runs"},
            EarlyStopping: {"wait_count": 3, "stopped_epoch": 0,
                            "best_score": torch.tensor(0.81), "patience": 10}},
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [lr_state],
        "hparams_name": "kwargs",
        "hyper_parameters": {"args": argparse.Namespace(
            block_size=72, pad_size=12, f_maps=list(TINY), num_classes=1, use_coord=True,
            optim="AdamW", scheduler="OneCycleLR", learning_rate=1e-3)},
    })
    return ckpt


@pytest.mark.parametrize("extras", [True, False], ids=["optimizer+schedule+callbacks", "bare"])
@pytest.mark.parametrize("on_gpu", [False, True], ids=["cpu-saved", "gpu-saved"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_original_lightning_checkpoint_gives_the_same_network(tmp_path, legacy, on_gpu, extras):
    net, optimizer, scheduler = _trained_network(seed=11)
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        expected = net(x)
    path = tmp_path / "epoch=41.ckpt"
    with _modules_installed_while_saving(_LIGHTNING):
        ckpt = _lightning_checkpoint(net, optimizer, scheduler, extras)
        with _saved_as_on_gpu() if on_gpu else contextlib.nullcontext():
            torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)

    if on_gpu:   # the file really says cuda:0, and plain torch.load cannot place it here
        raw = path.read_bytes()
        if not legacy:
            with zipfile.ZipFile(path) as archive:
                raw = archive.read(next(n for n in archive.namelist()
                                        if n.endswith("data.pkl")))
        assert b"cuda:0" in raw and b"cpu" not in raw
        if not torch.cuda.is_available():
            with pytest.raises(RuntimeError, match="CUDA"):
                torch.load(path, weights_only=False)

    model, meta = load_checkpoint(path, "cpu")
    assert meta["source"] == "original" and meta["epoch"] == 41
    assert meta["model_args"] == {"in_channels": 1, "num_classes": 1, "f_maps": list(TINY),
                                  "coord_conv": True, "pyramid": True}
    if extras:
        assert meta["patch_size"] == 72 and meta["pad_size"] == 12
        assert meta["config"]["optim"] == "AdamW"
    assert all(p.device.type == "cpu" for p in model.parameters())
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_restricted_reading_keeps_data_and_replaces_code_by_placeholders(tmp_path):
    net, optimizer, scheduler = _trained_network(seed=12)
    path = tmp_path / "last.ckpt"
    with _modules_installed_while_saving(_LIGHTNING):
        torch.save(_lightning_checkpoint(net, optimizer, scheduler, extras=True), path)
    data = read_checkpoint(path)

    anneal = data["lr_schedulers"][0]["anneal_func"]
    assert isinstance(anneal, _Placeholder) and anneal.origin == "builtins.getattr"
    owner, name = anneal.args
    assert name == "_annealing_cos"
    assert owner.origin == "torch.optim.lr_scheduler.OneCycleLR"
    adamw = owner.state["optimizer"]
    assert adamw.origin == "torch.optim.adamw.AdamW"
    # the optimiser object's own state: a real defaultdict keyed by real Parameters
    assert isinstance(adamw.state["state"], collections.defaultdict)
    params = adamw.state["param_groups"][0]["params"]
    assert all(isinstance(p, torch.nn.Parameter) for p in params)
    assert torch.equal(adamw.state["state"][params[0]]["exp_avg"],
                       optimizer.state[next(net.parameters())]["exp_avg"])

    saved = optimizer.state_dict()
    loaded = data["optimizer_states"][0]
    assert loaded["param_groups"][0]["lr"] == saved["param_groups"][0]["lr"]
    assert torch.equal(loaded["state"][0]["exp_avg_sq"], saved["state"][0]["exp_avg_sq"])
    assert data["lr_schedulers"][0]["last_epoch"] == 1

    callbacks = data["callbacks"]
    origins = sorted(k.origin for k in callbacks)
    assert origins == ["pytorch_lightning.callbacks.early_stopping.EarlyStopping",
                       "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"]
    state = next(v for k, v in callbacks.items() if k.origin.endswith("ModelCheckpoint"))
    assert state["monitor"] == "cls_pr_alpha1.0"
    assert float(state["best_model_score"]) == pytest.approx(0.81)
    args = data["hyper_parameters"]["args"]
    assert isinstance(args, argparse.Namespace) and args.block_size == 72


def test_hyper_parameters_in_a_foreign_dict_class(tmp_path):
    """Later Lightning versions store ``hyper_parameters`` as their AttributeDict."""
    net, _, _ = _trained_network(seed=13)
    path = tmp_path / "attr.ckpt"
    with _modules_installed_while_saving(_LIGHTNING):
        AttributeDict = _foreign_class("pytorch_lightning.utilities.parsing",
                                       "AttributeDict", dict)
        hparams = AttributeDict(args=argparse.Namespace(block_size=64, pad_size=[10]))
        torch.save({"epoch": 3, "state_dict": _original_names(net.state_dict()),
                    "hyper_parameters": hparams}, path)
    _, meta = load_checkpoint(path)
    assert meta["patch_size"] == 64 and meta["pad_size"] == 10


class _System:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


class _Eval:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return eval, (f"open({str(self.target)!r}, 'w').write('x')",)


class _Import:
    def __reduce__(self):
        return __import__, ("os",)


class _SystemFunction:
    """Pickled as ``getattr(__import__("os"), "system")``: the bound-method pattern."""

    def __call__(self, *args):  # pragma: no cover - only its pickled form is used
        raise AssertionError

    def __reduce__(self):
        return getattr, (_Import(), "system")


class _GetattrChain:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return _SystemFunction(), (f"touch {self.target}",)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_malicious_checkpoint_runs_nothing(tmp_path, legacy):
    targets = [tmp_path / f"pwned{i}" for i in range(3)]
    net, _, _ = _trained_network(seed=14)
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        expected = net(x)
    path = tmp_path / "evil.ckpt"
    torch.save({"epoch": 1, "state_dict": _original_names(net.state_dict()),
                "callbacks": {"a": _System(targets[0]), "b": _Eval(targets[1]),
                              "c": _GetattrChain(targets[2])}},
               path, _use_new_zipfile_serialization=not legacy)
    model, _ = load_checkpoint(path)
    assert not any(t.exists() for t in targets)
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)
    callbacks = read_checkpoint(path)["callbacks"]
    assert not any(t.exists() for t in targets)
    assert all(isinstance(v, _Placeholder) for v in callbacks.values())
    assert callbacks["a"].origin in ("posix.system", "nt.system")
    assert callbacks["b"].origin == "builtins.eval"
    assert callbacks["c"].origin == "builtins.getattr"
    # control: PyTorch's unrestricted reader does run all three payloads
    torch.load(path, weights_only=False)
    assert all(t.exists() for t in targets)


@pytest.mark.parametrize("payload", [_System, _GetattrChain])
@pytest.mark.parametrize("protocol", [0, 2])
def test_a_bare_malicious_pickle_runs_nothing(tmp_path, payload, protocol):
    """A plain pickle (no torch framing): torch.load reads it as the legacy header."""
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(payload(target), protocol=protocol))
    with pytest.raises(DeepETPickerError, match="evil.pth"):
        load_checkpoint(path)
    assert not target.exists()


@pytest.mark.parametrize("payload", [
    # argparse.Namespace.tampered = 1 (BUILD with slot state on the class)
    b"\x80\x02cargparse\nNamespace\nN}X\x08\x00\x00\x00tamperedK\x01s\x86b0K\x01.",
    # torch.serialization._get_layout.__dict__["cache"] = 2 (BUILD with a dict state)
    b"\x80\x02ctorch.serialization\n_get_layout\n}X\x05\x00\x00\x00cacheK\x02sb0K\x01.",
], ids=["class", "function"])
def test_a_file_cannot_change_classes_or_functions(tmp_path, payload):
    """BUILD on an allowed class or function would change it for the whole program."""
    path = tmp_path / "tamper.ckpt"
    path.write_bytes(payload)
    with pytest.raises(DeepETPickerError, match="tamper.ckpt"):
        read_checkpoint(path)
    assert not hasattr(argparse.Namespace, "tampered")
    assert isinstance(torch.serialization._get_layout.cache, dict)


def test_our_checkpoints_take_the_weights_only_path(tmp_path, monkeypatch):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    net, optimizer, scheduler = _trained_network(seed=15)
    ours = save_checkpoint(tmp_path / "best.pth", net, epoch=2,
                           optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict())
    load_checkpoint(ours)
    assert [c.get("weights_only") for c in calls] == [True]

    calls.clear()
    original = tmp_path / "orig.ckpt"
    with _modules_installed_while_saving(_LIGHTNING):
        torch.save(_lightning_checkpoint(net, optimizer, scheduler, extras=True), original)
    calls.clear()
    load_checkpoint(original)
    assert [c.get("weights_only") for c in calls] == [True, False]
    assert calls[1]["pickle_module"].__name__ != "pickle"


def test_an_environment_that_forces_safe_loading_is_named(tmp_path, monkeypatch):
    net, optimizer, scheduler = _trained_network(seed=19)
    path = tmp_path / "orig.ckpt"
    with _modules_installed_while_saving(_LIGHTNING):
        torch.save(_lightning_checkpoint(net, optimizer, scheduler, extras=True), path)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    assert "Unset that variable" in _message(path)


# --- messages for files that are not checkpoints -------------------------------------------

def _message(path) -> str:
    with pytest.raises(DeepETPickerError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert str(path) in text or os.fspath(path) in text
    assert "weights_only" not in text and "\n" not in text
    assert len(text) < 400
    return text


def test_text_empty_and_binary_files_say_what_they_are(tmp_path):
    text = tmp_path / "model.ckpt"
    text.write_text("train_configs={'block_size': 72}\n" * 4)
    message = _message(text)
    assert "text file" in message and "best.pth" in message and ".ckpt" in message

    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    assert "empty" in _message(empty)

    tomogram = tmp_path / "tomo.mrc"
    tomogram.write_bytes(bytes(range(256)) * 8)
    message = _message(tomogram)
    assert "not a PyTorch checkpoint" in message and "best.pth" in message


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_truncated_checkpoint_says_it_is_incomplete(tmp_path, legacy):
    net, _, _ = _trained_network(seed=16)
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": _original_names(net.state_dict())}, whole,
               _use_new_zipfile_serialization=not legacy)
    for cut in (0.5, 0.98):
        part = tmp_path / f"part{cut}.ckpt"
        raw = whole.read_bytes()
        part.write_bytes(raw[:int(len(raw) * cut)])
        message = _message(part)
        assert "damaged or incomplete" in message and "Copy it again" in message


def test_other_pickles_say_what_they_hold(tmp_path):
    whole_model = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), whole_model)
    message = _message(whole_model)
    assert "torch.nn.modules.linear.Linear" in message and "torch.save(model)" in message

    script = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), script)
    assert "TorchScript" in _message(script)


def test_a_run_folder_means_its_best_pth(tmp_path):
    net, _, _ = _trained_network(seed=17)
    run = tmp_path / "runs" / "demo"
    save_checkpoint(run / "best.pth", net, epoch=5)
    save_checkpoint(run / "last.pth", net, epoch=9)
    model, meta = load_checkpoint(run)
    assert meta["path"] == str(run / "best.pth") and meta["epoch"] == 5

    # reading a folder without saying which file is wanted names the files in it
    with pytest.raises(DeepETPickerError, match="Name one of these files") as info:
        read_checkpoint(run)
    assert "best.pth" in str(info.value) and "last.pth" in str(info.value)


def test_a_folder_without_best_pth_lists_its_checkpoints(tmp_path):
    net, _, _ = _trained_network(seed=18)
    run = tmp_path / "lightning_logs"
    save_checkpoint(run / "last.pth", net, epoch=9)
    (run / "version_0" / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": _original_names(net.state_dict())},
               run / "version_0" / "checkpoints" / "epoch=41.ckpt")
    (run / "metrics.csv").write_text("epoch,loss\n")
    message = _message(run)
    assert "without best.pth" in message
    assert "last.pth" in message and "epoch=41.ckpt" in message and "metrics" not in message
    assert f"e.g. {run / 'last.pth'}" in message

    empty = tmp_path / "nothing_here"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    message = _message(empty)
    assert "no checkpoint files" in message and "best.pth" in message
