"""What a checkpoint says about itself: the training config it was made with, whether its
network fits a config, and the detection thresholds tuned while it was trained."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from deepetpicker.errors import DeepETPickerError
from deepetpicker.types import PathLike

if TYPE_CHECKING:
    from deepetpicker.config import TrainConfig
    from deepetpicker.model.resunet import ResUNet3D
    from deepetpicker.picking.settings import PickSettings
    from deepetpicker.progress import Reporter


def config_from_checkpoint(meta: dict, weights: PathLike,
                           diameters: Optional[Sequence[float]] = None) -> TrainConfig:
    """The training config a checkpoint was made with, for predicting without a config file.

    Our checkpoints hold their whole training config. The original program's ``.ckpt`` hold
    the patch and pad sizes but not the particle diameters: those come from ``diameters``, or
    from the training config file the checkpoint names when that file is still there, or a
    clear error asks for them. ``diameters`` given also override a checkpoint's own.
    """
    return checkpoint_config(meta, weights, diameters)[0]


def checkpoint_config(meta: dict, weights: PathLike, diameters: Optional[Sequence[float]]
                      ) -> tuple[TrainConfig, bool]:
    """:func:`config_from_checkpoint`, and whether the config names the weak labels the
    network was trained with (not so for an original checkpoint without its config file,
    whose label diameter is then a stand-in)."""
    from deepetpicker.config import TrainConfig

    weights = Path(weights)
    saved = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    num_cls = int(meta["model_args"]["num_classes"])
    labels_known = True
    if meta.get("source") == "deepetpicker" and saved:
        data = dict(saved)
    else:
        data = _named_config(saved)
        labels_known = bool(data)
        if not data:
            data = _config_of_diameters(weights, meta, diameters, num_cls)
        data["f_maps"] = list(meta["model_args"]["f_maps"])
        data["coord_conv"] = bool(meta["model_args"].get("coord_conv", True))
        data["pyramid"] = bool(meta["model_args"].get("pyramid", True))
        for ours in ("patch_size", "pad_size"):
            if isinstance(meta.get(ours), int):
                data["patch_size" if ours == "patch_size" else "padding_size"] = meta[ours]
    if diameters is not None:
        if len(diameters) not in (1, num_cls):
            raise DeepETPickerError(
                f"--diameters has {len(diameters)} value(s) but {weights} picks {num_cls} "
                f"class(es); give one diameter per class (voxels).")
        data["ocp_diameter"] = [int(round(d)) for d in diameters] * (
            num_cls if len(diameters) == 1 else 1)
    cfg = TrainConfig.from_dict(data, source=str(weights))
    cfg.validate(check_paths=False)
    return cfg, labels_known


def _named_config(saved: dict) -> dict:
    """The settings of the training config file an original checkpoint names, when that file
    is still there and reads; an empty dict otherwise."""
    from deepetpicker.config import load_train_config

    for key in ("train_configs", "configs"):
        named = saved.get(key)
        if isinstance(named, str) and named and Path(named).is_file():
            try:
                data = load_train_config(named).to_dict()
            except DeepETPickerError:
                data = {}
            if data:
                return data
    return {}


def _config_of_diameters(weights: Path, meta: dict, diameters: Optional[Sequence[float]],
                         num_cls: int) -> dict:
    """A stand-in config for an original checkpoint without its config file: the particle
    diameters given (or kept in the checkpoint) and the smallest as the label."""
    known = diameters if diameters is not None else meta.get("diameters")
    if not known:
        raise DeepETPickerError(
            f"{weights} does not hold the particle diameters (a checkpoint of the "
            f"original DeepETPicker). Give them with --diameters (voxels, one per "
            f"class, {num_cls} class(es)) or give the training config the weights "
            f"were made with.")
    return {"dset_name": weights.stem, "base_path": str(weights.parent),
            "num_cls": num_cls, "label_diameter": int(round(min(known))),
            "ocp_diameter": [int(round(d)) for d in known],
            "train_set_ids": [0], "val_set_ids": [0]}


def check_weights(model: ResUNet3D, meta: dict, config: TrainConfig, weights: PathLike) -> None:
    """Raise when the checkpoint's network does not fit the config."""
    source = getattr(config, "source", None) or "the training config"
    if model.num_classes != int(config.num_cls):
        raise DeepETPickerError(
            f"Weights {weights} were trained for {model.num_classes} class(es) but "
            f"{source} has num_cls = {config.num_cls}. Use the config the weights were "
            f"trained with (or weights trained on this dataset).")
    if model.in_channels != 1:
        raise DeepETPickerError(
            f"Weights {weights} expect {model.in_channels} input channels; DeepETPicker "
            f"tomograms have one. Choose weights of a DeepETPicker 3D-ResUNet.")
    if meta.get("source") == "deepetpicker":
        want = [int(c) for c in config.f_maps]
        if list(model.f_maps) != want:
            raise DeepETPickerError(
                f"Weights {weights} hold a network with channels {list(model.f_maps)} but "
                f"{source} has f_maps = {want}. Use the config the weights were trained with, "
                f"or set f_maps to {list(model.f_maps)}.")
    multiple = model.size_multiple
    if int(config.patch_size) % multiple:
        raise DeepETPickerError(
            f"patch_size {config.patch_size} in {source} is not a multiple of {multiple}; "
            f"use e.g. 72.")


def tuned_settings(settings: PickSettings, meta: dict, num_cls: int,
                   report: Reporter) -> PickSettings:
    """``settings`` with the checkpoint's score thresholds (tuned per class for the best
    localisation F1 on the validation tomograms during training) when the caller gave none.
    Thresholds an earlier version tuned for class F1 (which drop found particles whose class
    is uncertain) are not used."""
    from dataclasses import replace

    from deepetpicker.picking.settings import THRESHOLD_RULE, format_thresholds

    tuned = meta.get("score_thresholds")
    if (settings.min_score is not None or not isinstance(tuned, (list, tuple))
            or len(tuned) != num_cls):
        return settings
    if meta.get("threshold_rule") != THRESHOLD_RULE:
        report.log("the score thresholds in this checkpoint were tuned for class F1 by an "
                   "earlier version and can drop particles that were found; every pick is "
                   "kept (--min-score applies thresholds)")
        return settings
    settings = replace(settings, min_score=tuple(float(v) for v in tuned))
    report.log(f"detection thresholds tuned on the validation tomograms: "
               f"{format_thresholds(settings.min_score)} (--min-score overrides; 0 keeps "
               f"every pick)")
    return settings
