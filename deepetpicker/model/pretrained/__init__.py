"""Where training starts: the pretrained light network, a checkpoint, or random weights.

The package may ship ``light.pth`` in this folder: the light network (``NETWORK_PRESETS
["light"]``) trained by ``scripts/pretrain.py`` on varied simulated tomograms to tell
particles from background (one class). A training config's ``init`` chooses the start:

- ``"pretrained"`` (the default): the shipped weights, when the network is the light preset
  and the file is installed; otherwise random weights, with one log line saying why.
- ``"scratch"``: random weights.
- the path of a checkpoint (ours or the original program's; a run folder means its
  ``best.pth``): its weights. A file whose network differs from the config's is an error.

Every tensor whose name and shape match is copied (:func:`load_pretrained`). The head, the
final 1x1x1 convolution that gives the class channels, is copied when the number of classes
is the same; from a one-class network (the shipped one) into K classes it is split: the
particle channel is shared equally by the K classes, so the new network starts by finding
particles as well as the pretrained one and only has to learn which class each one is. How the
shipped weights were made (script, data settings, seed, steps, final loss and F1) is stored
in the file under ``pretraining`` and described in ``docs/pretraining.md``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import torch

from deepetpicker.config import INIT_CHOICES, NETWORK_PRESETS
from deepetpicker.errors import DeepETPickerError
from deepetpicker.model.checkpoint import load_checkpoint
from deepetpicker.model.resunet import ResUNet3D
from deepetpicker.types import PathLike

#: The folder of the shipped weights, one file per network preset.
PRETRAINED_DIR = Path(__file__).resolve().parent
#: The network presets that have shipped weights, and their file names in PRETRAINED_DIR.
PACKAGED_FILES = {"light": "light.pth"}
#: Where the procedure and provenance of the shipped weights are described.
PRETRAINING_DOC = "docs/pretraining.md"


def packaged_weights(preset: str = "light") -> Path:
    """The path of the shipped weights of ``preset`` (which may not be installed)."""
    return PRETRAINED_DIR / PACKAGED_FILES[preset]


def _head_names(net: ResUNet3D) -> set[str]:
    """The state names of the network's head (the final convolution to the class channels)."""
    return {f"head.{name}" for name in net.head.state_dict()}


def _differences(net: ResUNet3D, source_args: dict) -> list[str]:
    """How the network a checkpoint describes differs from ``net``, the class count aside."""
    ours = net.model_args()
    return [f"{key} {source_args.get(key)!r} in the file but {ours[key]!r} in this network"
            for key in ours if key != "num_classes" and source_args.get(key) != ours[key]]


def _classes(n: int) -> str:
    return f"{n} class{'es' if n != 1 else ''}"


def load_pretrained(net: ResUNet3D, source: PathLike) -> dict[str, Any]:
    """Copy the weights of the checkpoint ``source`` into ``net``; returns what was copied.

    Every tensor (parameters and BatchNorm statistics) whose name and shape match is copied.
    The head is copied when it has the same number of output channels, split from a one-class
    head into several classes (:func:`_split_foreground_head`), and otherwise keeps its fresh
    random weights; so a network pretrained on one class serves any number of classes. A
    checkpoint whose network differs otherwise (channels per level, CoordConv, image pyramid)
    raises :class:`DeepETPickerError` naming the file and the difference.

    The result: ``source`` (the file read), ``loaded`` and ``total`` (tensor counts),
    ``skipped`` (names left as they were), ``head`` (``"copied"``, ``"split"`` or ``"new"``),
    ``num_classes`` and ``source_classes``, and ``pretraining`` (the provenance the file
    records, its curve left out, or None).
    """
    model, meta = load_checkpoint(source, "cpu")
    differences = _differences(net, meta["model_args"])
    if differences:
        raise DeepETPickerError(
            f"Cannot start from {meta['path']}: its network does not fit this config's "
            f"({'; '.join(differences)}). Choose weights trained with the same f_maps, "
            f"coord_conv and pyramid, or set init to 'scratch'.")
    return _copy_weights(net, model, meta)


def _split_foreground_head(net: ResUNet3D, model: ResUNet3D) -> None:
    """Start ``net``'s softmax head (background + K classes) from the one-channel sigmoid
    head of ``model`` so that at step 0 the foreground probability (1 - background) is about
    the pretrained one and each class holds about an equal share of it.

    ``sigmoid(z) = softmax([0, z])[1]``, so the background logit is 0 and every class logit
    is ``z - log K``, plus a random deviation per class of the size of a fresh head's weights,
    zero on average over the classes (``net``'s own random head, less its mean over the
    classes). Without it the class rows are equal, and equal rows pass the network no
    gradient that tells one class from another: the feature gradient ``sum_k (p_k - y_k)
    w_k`` is then ``(p_fg - y_fg) w``, the particle-or-not signal alone, and kinds of similar
    size stay in one class after hundreds of steps. A head without the pretrained particle
    row instead starts from a near-uniform split over K + 1 channels, and a class whose weak
    label is much smaller than the others' can then lose every particle to a larger class
    before it is learned.
    """
    k = net.out_channels - 1
    with torch.no_grad():
        weight, bias = net.head.weight, net.head.bias
        fresh = weight[1:].clone()
        weight[0].zero_()
        bias[0] = 0.0
        weight[1:] = model.head.weight[0].to(weight) + (fresh - fresh.mean(dim=0,
                                                                           keepdim=True))
        bias[1:] = float(model.head.bias.detach()[0]) - math.log(k)


def _copy_weights(net: ResUNet3D, model: ResUNet3D, meta: dict) -> dict[str, Any]:
    """Copy ``model``'s tensors into ``net`` where name and shape match (see
    :func:`load_pretrained`); only the head may be left out."""
    theirs = model.state_dict()
    ours = net.state_dict()
    head = _head_names(net)
    loaded, skipped = [], []
    with torch.no_grad():
        for name, tensor in ours.items():
            other = theirs.get(name)
            if other is not None and tuple(other.shape) == tuple(tensor.shape):
                tensor.copy_(other)
                loaded.append(name)
            else:
                skipped.append(name)
    odd = [name for name in skipped if name not in head]
    if odd:  # the constructor arguments agree, so only a hand-made file gets here
        raise DeepETPickerError(
            f"Cannot start from {meta['path']}: tensors {odd[:4]} are missing or of another "
            f"shape. Choose a checkpoint written by DeepETPicker training.")
    head_start = "copied"
    if skipped:
        head_start = "new"
        if model.out_channels == 1 and net.out_channels > 1:
            _split_foreground_head(net, model)
            head_start = "split"
    provenance = meta.get("pretraining")
    if isinstance(provenance, dict):  # the curve stays in the pretrained file
        provenance = {k: v for k, v in provenance.items() if k != "curve"}
    return {"source": meta["path"], "loaded": len(loaded), "total": len(ours),
            "skipped": skipped, "head": head_start,
            "num_classes": net.num_classes, "source_classes": model.num_classes,
            "pretraining": provenance}


def _summary(info: dict) -> str:
    if info["head"] == "copied":
        return f"all {info['total']} tensors, head included"
    if info["head"] == "split":
        return (f"{info['loaded']} of {info['total']} tensors; head split from its particle "
                f"channel into {_classes(info['num_classes'])}")
    return (f"{info['loaded']} of {info['total']} tensors; head new for "
            f"{_classes(info['num_classes'])}")


def start_weights(net: ResUNet3D, init: str,
                  packaged: Optional[PathLike] = None) -> dict[str, Any]:
    """Give ``net`` its starting weights as the config's ``init`` says; returns what was done.

    ``init`` is ``"pretrained"``, ``"scratch"`` or the path of a checkpoint (see the module
    description). ``packaged`` replaces the shipped file (for tests and for trying new
    weights). The result holds ``init``, ``weights`` (``"pretrained"``, ``"checkpoint"`` or
    ``"random"``), ``message`` (one line for the training log) and, when weights were
    copied, what :func:`load_pretrained` returns; a fall-back to random weights gives its
    ``reason``.
    """
    if init == "scratch":
        return {"init": init, "weights": "random",
                "message": "Starting from random weights (init 'scratch')."}
    if init not in INIT_CHOICES:
        try:
            info = load_pretrained(net, init)
        except DeepETPickerError as err:
            raise DeepETPickerError(f"init = {str(init)!r}: {err}") from None
        return {"init": init, "weights": "checkpoint", **info,
                "message": f"Started from the weights of {info['source']} ({_summary(info)})."}
    light = list(NETWORK_PRESETS["light"])
    path = Path(packaged) if packaged is not None else packaged_weights("light")
    reason = None
    if list(net.f_maps) != light:
        reason = (f"pretrained weights exist only for the light network (f_maps {light}); "
                  f"this one has f_maps {list(net.f_maps)}")
    elif not path.is_file():
        reason = (f"no pretrained weights are installed ({path} not found; "
                  f"{PRETRAINING_DOC} tells how to make them)")
    else:
        model, meta = load_checkpoint(path, "cpu")
        differences = _differences(net, meta["model_args"])
        if differences:
            reason = f"the pretrained light network differs ({'; '.join(differences)})"
    if reason is not None:
        return {"init": init, "weights": "random", "reason": reason,
                "message": f"Starting from random weights: {reason}."}
    info = _copy_weights(net, model, meta)
    return {"init": init, "weights": "pretrained", **info,
            "message": f"Started from the pretrained light network ({_summary(info)})."}
