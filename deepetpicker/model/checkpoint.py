"""Checkpoints: ours (everything inference and resuming need) and the original program's.

Our checkpoint is a ``torch.save`` dictionary of plain values and tensors::

    {"format": "deepetpicker-checkpoint", "version": 1,
     "model_args": {...}, "state_dict": {...},
     "epoch": int, "config": {...}, "class_names": [...], "diameters": [...],
     "optimizer": {...}, "scheduler": {...}, "scaler": {...}, "history": [...], ...}

It is read with ``torch.load(weights_only=True)``, so opening a checkpoint never runs code.

The original program saved PyTorch-Lightning ``.ckpt`` files whose ``state_dict`` keys start
with ``model.`` and use its module names (``encoders.0.basic_module.conv1.conv.weight``,
``decoders.0.upsampling.upsample.weight``, ``final_conv.weight``). :func:`original_to_ours`
maps those names onto ours; the network's shape (channels, classes, CoordConv, pyramid) is
read from the weight shapes, so no settings file is needed. Classes those files reference but
that are not installed here (Lightning callbacks, hyper-parameter containers) are replaced by
inert placeholders while loading.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from pathlib import Path
from typing import Any, Union

import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path
from deepetpicker.model.resunet import ResUNet3D

PathLike = Union[str, os.PathLike]

FORMAT = "deepetpicker-checkpoint"
VERSION = 1

# Fragments of the original program's parameter names and ours, applied in order.
_ORIGINAL_NAME_PARTS = (
    (".basic_module.", ".block."),
    (".upsampling.upsample.", ".up."),
    (".batchnorm.", ".bn."),
)
_ORIGINAL_HEAD = "final_conv."
_OUR_HEAD = "head."


def original_to_ours(state_dict: dict) -> dict:
    """Rename the original program's parameter names (``model.`` prefix optional) to ours."""
    renamed = {}
    prefixed = any(key.startswith("model.") for key in state_dict)
    for key, value in state_dict.items():
        if prefixed and not key.startswith("model."):
            continue  # other attributes of the Lightning module (losses, metrics)
        name = key[len("model."):] if key.startswith("model.") else key
        if name.startswith(_ORIGINAL_HEAD):
            name = _OUR_HEAD + name[len(_ORIGINAL_HEAD):]
        for old, new in _ORIGINAL_NAME_PARTS:
            name = name.replace(old, new)
        renamed[name] = value
    return renamed


def infer_model_args(state_dict: dict, source: str = "checkpoint") -> dict:
    """Constructor arguments of :class:`ResUNet3D` read from the weight shapes (our names)."""
    def shape(name: str) -> tuple:
        tensor = state_dict.get(name)
        if tensor is None:
            raise DeepETPickerError(
                f"{source} has no parameter '{name}': it does not hold a DeepETPicker "
                f"3D-ResUNet (weights of another network or another program). Choose a "
                f"checkpoint written by DeepETPicker training.")
        return tuple(tensor.shape)

    f_maps = []
    while f"encoders.{len(f_maps)}.block.conv1.conv.weight" in state_dict:
        f_maps.append(shape(f"encoders.{len(f_maps)}.block.conv1.conv.weight")[0])
    if len(f_maps) < 2:
        shape("encoders.1.block.conv1.conv.weight")  # raises with the explanation
    first_in = shape("encoders.0.block.conv1.conv.weight")[1]
    decoder_in = shape("decoders.0.block.conv1.conv.weight")[1]
    coord = decoder_in - f_maps[-2]
    if coord not in (0, 3):
        raise DeepETPickerError(
            f"{source}: decoder input has {decoder_in} channels for {f_maps[-2]} features; "
            f"this network layout is not the DeepETPicker 3D-ResUNet.")
    in_channels = first_in - coord
    pyramid_channels = shape("encoders.1.block.conv1.conv.weight")[1] - f_maps[0] - coord
    if in_channels < 1 or pyramid_channels not in (0, in_channels):
        raise DeepETPickerError(
            f"{source}: encoder input channel counts ({first_in}, "
            f"{shape('encoders.1.block.conv1.conv.weight')[1]}) do not match a DeepETPicker "
            f"3D-ResUNet with f_maps {f_maps}.")
    out = shape("head.weight")[0]
    return {"in_channels": int(in_channels), "num_classes": 1 if out == 1 else int(out - 1),
            "f_maps": [int(f) for f in f_maps], "coord_conv": coord == 3,
            "pyramid": pyramid_channels > 0}


def save_checkpoint(path: PathLike, model: torch.nn.Module, **meta: Any) -> Path:
    """Write ``model`` (its weights and constructor arguments) and ``meta`` atomically.

    ``meta`` holds plain values: ``epoch``, ``config`` (dict), ``class_names``,
    ``diameters``, optimiser/scheduler/scaler state dicts, ``history``, ... . A model wrapped
    in DistributedDataParallel is unwrapped.
    """
    net = getattr(model, "module", model)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "model_args": net.model_args(),
               "state_dict": state}
    payload.update(meta)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


class _Placeholder(dict):
    """Stands in for a class a checkpoint names that is not installed (or not trusted)."""

    def __new__(cls, *args: Any, **kwargs: Any):
        return dict.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self)

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state


_UNSUPPORTED = re.compile(r"GLOBAL ([\w.]+) was not an allowed global")


def read_checkpoint(path: PathLike, device: Union[str, torch.device] = "cpu") -> dict:
    """The raw dictionary stored in a checkpoint file, read without running its code."""
    path = Path(path)
    if not path.is_file():
        raise DeepETPickerError(
            f"Checkpoint not found: {path}. Choose a .pth/.ckpt file written by training.")
    allowed: list = [argparse.Namespace]
    for _ in range(64):
        try:
            with torch.serialization.safe_globals(allowed):
                data = torch.load(path, map_location=device, weights_only=True)
            break
        except pickle.UnpicklingError as exc:
            match = _UNSUPPORTED.search(str(exc))
            if match is None:
                raise DeepETPickerError(
                    f"Cannot read checkpoint {path}: {exc}. It is not a checkpoint that can be "
                    f"loaded safely; choose one written by DeepETPicker training.") from exc
            name = match.group(1)
            stub = type(name.rsplit(".", 1)[-1], (_Placeholder,), {"__module__": __name__})
            allowed.append((stub, name))
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise DeepETPickerError(
                f"Cannot read checkpoint {path}: {exc}. The file is not a PyTorch checkpoint "
                f"or is incomplete; choose the best.pth/last.pth written by training.") from exc
    else:  # pragma: no cover - a file naming more than 64 foreign classes
        raise DeepETPickerError(f"Cannot read checkpoint {path}: too many unknown classes.")
    if not isinstance(data, dict):
        raise DeepETPickerError(
            f"Checkpoint {path} holds a {type(data).__name__}, not a dictionary of weights. "
            f"Choose a checkpoint written by DeepETPicker training.")
    return data


def _plain(value: Any) -> Any:
    """Keep JSON-like values (dropping placeholders) from a foreign hyper-parameter tree."""
    if isinstance(value, _Placeholder):
        return None
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not isinstance(v, _Placeholder)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return None


def _original_meta(data: dict, path: Path) -> dict:
    hparams = _plain(data.get("hyper_parameters") or {})
    args = hparams.get("args") if isinstance(hparams.get("args"), dict) else hparams
    meta: dict = {"source": "original", "epoch": data.get("epoch"), "config": args or {}}
    if args:
        for ours, theirs in (("patch_size", "block_size"), ("pad_size", "pad_size")):
            value = args.get(theirs)
            if isinstance(value, list) and value:
                value = value[0]
            if isinstance(value, int):
                meta[ours] = value
    return meta


def load_checkpoint(path: PathLike, device: Union[str, torch.device] = "cpu"
                    ) -> tuple[ResUNet3D, dict]:
    """Rebuild the network from a checkpoint; returns ``(model in eval mode, meta)``.

    Reads our checkpoints and the original program's Lightning ``.ckpt`` (or a bare state
    dict of either naming). ``meta`` holds everything but the weights: ``source``
    ("deepetpicker" or "original"), ``model_args``, ``epoch``, ``config``, ``class_names``,
    ``diameters`` and, for ours, the optimiser/scheduler states and the metrics history.
    """
    path = Path(path)
    data = read_checkpoint(path, device)
    if data.get("format") == FORMAT:
        state = data["state_dict"]
        meta = {k: v for k, v in data.items() if k != "state_dict"}
        meta["source"] = "deepetpicker"
        model_args = dict(data["model_args"])
    else:
        if isinstance(data.get("state_dict"), dict):
            state = data["state_dict"]
            meta = _original_meta(data, path)
        elif data and all(isinstance(v, torch.Tensor) for v in data.values()):
            state, meta = data, {"source": "original", "config": {}}
        else:
            raise DeepETPickerError(
                f"Checkpoint {path} has no weights (no 'state_dict'; keys: "
                f"{sorted(data)[:8]}). Choose a checkpoint written by DeepETPicker training.")
        state = original_to_ours(state)
        model_args = infer_model_args(state, source=f"Checkpoint {path}")
    model = ResUNet3D(**model_args)
    _load_weights(model, state, path)
    meta["model_args"] = model.model_args()
    meta["path"] = str(path)
    model.to_device(device).eval()
    return model, meta


def _load_weights(model: ResUNet3D, state: dict, path: Path) -> None:
    expected = model.state_dict()
    # BatchNorm counters are absent from some older files; keep ours (zero) for those.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or extra or wrong:
        details = "; ".join(part for part in (
            f"missing {missing[:4]}" if missing else "",
            f"unexpected {extra[:4]}" if extra else "",
            f"wrong shape {wrong[:4]}" if wrong else "") if part)
        raise DeepETPickerError(
            f"Checkpoint {path} does not fit the 3D-ResUNet it describes ({details}). It may "
            f"come from a variant of the original program (attention, light-weight or PAF "
            f"blocks) that DeepETPicker does not support; retrain with DeepETPicker.")
    model.load_state_dict(state, strict=False)
