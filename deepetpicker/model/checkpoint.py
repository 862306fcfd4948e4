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
read from the weight shapes, so no settings file is needed. Those files name classes and
functions (Lightning callbacks, the optimiser and its one-cycle schedule, ``getattr``) that
are not installed here or not safe to call; a restricted unpickler replaces each of them by an
inert placeholder, so reading a file never runs code from it (see :func:`read_checkpoint`).
"""

from __future__ import annotations

import argparse
import codecs
import collections
import functools
import os
import pickle
import types
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from deepetpicker.errors import DeepETPickerError, listed
from deepetpicker.io.atomic import atomic_path
from deepetpicker.io.dataset import BEST_CHECKPOINT, CHECKPOINT_SUFFIXES, LAST_CHECKPOINT
from deepetpicker.model.resunet import ResUNet3D
from deepetpicker.types import PathLike

FORMAT = "deepetpicker-checkpoint"
VERSION = 1
#: The files of a training run folder: the best validated weights and the last state.
BEST, LAST = BEST_CHECKPOINT, LAST_CHECKPOINT

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


# ---------------------------------------------------------------------------------------
# Reading files without running them.
#
# ``torch.load(weights_only=True)`` reads our checkpoints but refuses the original program's:
# Lightning 1.1 with torch 1.6/1.7 pickled the OneCycleLR state with its ``anneal_func`` (a
# bound method, stored as ``builtins.getattr(<scheduler>, name)``, which drags the scheduler
# and the AdamW object with its ``defaultdict`` state into the file), callbacks keyed by
# their class and hyper-parameters in an ``argparse.Namespace``. Those files are read with a
# restricted unpickler instead: the globals in ``_allowed_globals`` are the only real objects
# a file can name; every other global (``getattr``, ``eval``, ``os.system``, Lightning's
# classes, the optimiser and scheduler classes, ...) becomes an inert placeholder class that
# accepts any arguments and state and does nothing. ``torch.load`` takes the module-like
# ``_RESTRICTED_PICKLE``: for the zip format it subclasses our ``Unpickler`` (its
# ``find_class`` maps storage names itself and defers the rest to ours; its
# ``persistent_load`` brings the tensor data); for the legacy format it also reads the
# header, the storage table and the storage keys with our ``load``.
# ---------------------------------------------------------------------------------------


class _Placeholder:
    """An inert stand-in for a global that a checkpoint names but that is not trusted.

    Subclasses (one per name and reader, see :class:`_RestrictedUnpickler`) are what the
    unpickler returns for the global; calling one (or an instance), building one from a
    state, filling one with items or elements only keeps the data. ``origin`` is the
    ``module.name`` the file asked for.
    """

    origin = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["args"] = args

    def __call__(self, *args: Any, **kwargs: Any) -> "_Placeholder":
        return type(self)(*args, **kwargs)     # getattr(...)(...) chains stay inert

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("elements", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("elements", []).extend(values)

    def __repr__(self) -> str:
        return f"<not loaded: {self.origin}>"


def _torch_globals() -> dict:
    """The torch objects a checkpoint may name: tensor rebuilders, sizes, devices, dtypes."""
    allowed: dict = {}
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3",
                 "_rebuild_parameter", "_rebuild_parameter_with_state"):
        function = getattr(torch._utils, name, None)
        if function is not None:
            allowed[("torch._utils", name)] = function
    allowed[("torch", "Size")] = torch.Size
    allowed[("torch", "device")] = torch.device
    allowed[("torch.serialization", "_get_layout")] = torch.serialization._get_layout
    for name, value in vars(torch).items():
        if isinstance(value, (torch.dtype, torch.memory_format, torch.layout)):
            allowed[("torch", name)] = value
    return allowed


def _numpy_globals() -> dict:
    """numpy scalars and arrays (``ndarray.__setstate__`` refuses raw bytes for objects)."""
    import numpy

    core = getattr(numpy, "_core", None) or numpy.core
    allowed: dict = {("numpy", "dtype"): numpy.dtype, ("numpy", "ndarray"): numpy.ndarray}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = core.multiarray._reconstruct
        allowed[(module, "scalar")] = core.multiarray.scalar
    return allowed


@functools.lru_cache(maxsize=1)
def _allowed_globals() -> dict:
    allowed: dict = {("builtins", t.__name__): t for t in (
        dict, list, tuple, set, frozenset, bytearray, bytes, str, int, float, complex, bool,
        slice, range, object)}
    allowed.update({
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("argparse", "Namespace"): argparse.Namespace,
        ("_codecs", "encode"): codecs.encode,   # protocol 2 stores bytes with it
    })
    allowed.update(_torch_globals())
    allowed.update(_numpy_globals())
    return allowed


# Protocol 2 pickles written by Python 3 name builtins as ``__builtin__``.
_PY2_MODULES = {"__builtin__": "builtins"}

# Objects whose attributes are shared by the whole program: a file may not change them.
_SHARED = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
           types.ModuleType)


class _RestrictedUnpickler(pickle._Unpickler):
    """A pickle reader whose globals come from an allow-list; all others are placeholders.

    Built on the pure-Python reader so that BUILD (which sets an object's attributes or
    state) can be refused for classes, functions and modules: a file could otherwise change
    ``argparse.Namespace`` or one of torch's rebuild functions for the rest of the program.
    Placeholder classes are made per reader, so one file cannot change them for the next.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._placeholders: dict = {}

    def find_class(self, module: str, name: str) -> Any:
        module, name = str(module), str(name)
        module = _PY2_MODULES.get(module, module)
        found = _allowed_globals().get((module, name))
        if found is not None:
            return found
        if module in ("torch", "torch.cuda") and name.endswith("Storage"):
            # legacy files name storage classes (torch.FloatStorage) in their storage tables
            try:
                return torch.serialization.StorageType(name)
            except (AttributeError, KeyError):
                pass
        key = (module, name)
        if key not in self._placeholders:
            self._placeholders[key] = type("Placeholder", (_Placeholder,), {
                "origin": f"{module}.{name}", "__module__": __name__})
        return self._placeholders[key]

    def load_build(self) -> None:
        target = self.stack[-2] if len(self.stack) > 1 else None
        if isinstance(target, _SHARED):
            raise pickle.UnpicklingError(
                f"the file tries to change {getattr(target, '__qualname__', target)!r}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


# What ``torch.load(pickle_module=...)`` uses: ``Unpickler``, ``load`` and ``__name__``.
_RESTRICTED_PICKLE = types.ModuleType(
    "deepetpicker_restricted_pickle",
    "pickle reading that turns every global outside an allow-list into an inert placeholder")
_RESTRICTED_PICKLE.Unpickler = _RestrictedUnpickler
_RESTRICTED_PICKLE.load = _restricted_load
_RESTRICTED_PICKLE.UnpicklingError = pickle.UnpicklingError


def _checkpoint_files(folder: Path, depth: int = 3, limit: int = 5000) -> list:
    """Checkpoint-like files under ``folder`` (down to ``depth`` levels), nearest first."""
    found, seen = [], 0
    for root, dirs, files in os.walk(folder):
        if len(Path(root).relative_to(folder).parts) + 1 >= depth:
            dirs[:] = []
        dirs.sort()
        found += [Path(root) / n for n in files if n.lower().endswith(CHECKPOINT_SUFFIXES)]
        seen += len(files) + len(dirs)
        if seen > limit:
            break
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), str(p)))


def resolve_checkpoint(path: PathLike, prefer: Optional[str] = None) -> Path:
    """``path`` itself when it is a file, or the ``prefer`` file (``best.pth``) of a run folder.

    A missing path, or a folder without ``prefer``, raises a :class:`DeepETPickerError` that
    lists the checkpoint files the folder holds (or says there are none) and how to name one.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DeepETPickerError(
            f"Checkpoint not found: {path}. Choose a .pth/.ckpt file written by training "
            f"(runs/<name>/best.pth) or a run folder that holds a best.pth.")
    if prefer is not None and (path / prefer).is_file():
        return path / prefer
    what = f"a folder without {prefer}" if prefer else "a folder, not a checkpoint file"
    files = _checkpoint_files(path)
    if not files:
        raise DeepETPickerError(
            f"{path} is {what} and holds no checkpoint files (.pth/.ckpt). Choose the "
            f"best.pth of a DeepETPicker run folder (runs/<name>/best.pth) or a .ckpt "
            f"written by the original program's training.")
    shown = listed((p.relative_to(path) for p in files), limit=8)
    raise DeepETPickerError(
        f"{path} is {what}; it holds {shown}. Name one of these files, e.g. "
        f"{files[0]}.")


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a ``torch.jit.save`` archive (which ``torch.load`` would run)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError):
        return False            # a damaged archive (e.g. a file name that is not UTF-8)
    return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names)


def _diagnose(path: Path, error: BaseException) -> str:
    """Why ``path`` could not be read and what to do, without PyTorch's own advice."""
    choose = ("Choose the best.pth or last.pth of a DeepETPicker run, or a .ckpt written by "
              "the original program's training")
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        return f"the file cannot be opened ({exc.strerror or exc}). Check its permissions"
    if not head:
        return f"the file is empty. {choose}"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":   # zip or pickle header
        if _is_torchscript(path):
            return (f"it is a TorchScript model (torch.jit.save), not a training "
                    f"checkpoint. {choose}")
        # PyTorch's first sentence names the damage; its advice (weights_only) does not apply
        reason = str(error).strip().split(". ")[0].splitlines()[0][:160] if str(error) else ""
        reason = f" ({reason.rstrip('.')})" if reason and "weights_only" not in reason else ""
        return (f"the file is damaged or incomplete{reason}. Copy it again from where "
                f"training wrote it, or choose another checkpoint of the run")
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    if printable >= 0.95 * len(head):
        return f"it is a text file, not a PyTorch checkpoint. {choose}"
    return f"it is not a PyTorch checkpoint. {choose}"


def read_checkpoint(path: PathLike, device: Union[str, torch.device] = "cpu",
                    prefer: Optional[str] = None) -> dict:
    """The raw dictionary stored in a checkpoint file, read without running its code.

    Our checkpoints load with ``torch.load(weights_only=True)``. Files that loader refuses
    (the original program's Lightning ``.ckpt``, legacy-format files) are read again with the
    restricted unpickler: globals outside a short allow-list come back as inert
    :class:`_Placeholder` objects. A run folder resolves to its ``prefer`` file, if given
    (see :func:`resolve_checkpoint`).
    """
    path = resolve_checkpoint(path, prefer)
    if _is_torchscript(path):
        raise DeepETPickerError(f"Cannot read checkpoint {path}: {_diagnose(path, OSError())}.")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception:  # refused or unreadable: read it again with the restricted reader
        try:
            data = torch.load(path, map_location=device, pickle_module=_RESTRICTED_PICKLE,
                              weights_only=False)
        except Exception as exc:
            if "explicit pickle_module" in str(exc):
                raise DeepETPickerError(
                    f"Cannot read checkpoint {path}: the environment variable "
                    f"TORCH_FORCE_WEIGHTS_ONLY_LOAD stops PyTorch from reading it with "
                    f"DeepETPicker's restricted reader. Unset that variable and load it "
                    f"again.") from None
            raise DeepETPickerError(
                f"Cannot read checkpoint {path}: {_diagnose(path, exc)}.") from None
    if not isinstance(data, dict):
        what = data.origin if isinstance(data, _Placeholder) else type(data).__name__
        raise DeepETPickerError(
            f"Checkpoint {path} holds a {what} object, not a dictionary of weights (a whole "
            f"model saved with torch.save(model) is not read). Choose a checkpoint written by "
            f"DeepETPicker training or the original program's .ckpt.")
    return data


def _plain(value: Any) -> Any:
    """Keep JSON-like values (dropping placeholders) from a foreign hyper-parameter tree."""
    if isinstance(value, _Placeholder):
        # a dict subclass that is not installed here (Lightning's AttributeDict) keeps its items
        items = value.__dict__.get("items")
        return _plain(items) if items else None
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
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return _plain(value.item())      # numpy scalars
    return None


def _original_meta(data: dict, path: Path) -> dict:
    hparams = _plain(data.get("hyper_parameters") or {})
    hparams = hparams if isinstance(hparams, dict) else {}
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
    dict of either naming); a run folder means its ``best.pth``. ``meta`` holds everything
    but the weights: ``source`` ("deepetpicker" or "original"), ``model_args``, ``epoch``,
    ``config``, ``class_names``, ``diameters`` and, for ours, the optimiser/scheduler states
    and the metrics history.
    """
    path = resolve_checkpoint(path, prefer=BEST)
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
                f"{sorted(map(str, data))[:8]}). Choose a checkpoint written by DeepETPicker "
                f"training.")
        # Values the restricted reader could not rebuild are placeholders, not tensors;
        # leaving them out reports them as missing weights below.
        state = original_to_ours({k: v for k, v in state.items()
                                  if isinstance(v, torch.Tensor)})
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
