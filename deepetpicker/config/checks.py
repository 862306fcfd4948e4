"""The checks behind ``validate()`` of the two configs: one problem list for the whole config
(:class:`Problems`), the checks of one field (a name, a text, a whole number, a number in a
range, a folder), and the checks of each config's values and input folders.

Each check adds what is wrong to the list (naming the key, its value and what is expected);
nothing here changes a config.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

from deepetpicker.config.grammar import (
    LOSSES,
    MODEL_NAMES,
    NAME_PATTERN,
    canonical_name,
    config_name,
    format_int_list,
    is_int,
    is_number,
)
from deepetpicker.config.keys import (
    COORD_FORMATS,
    DEFAULT_AUGMENT,
    DEFAULT_F_MAPS,
    DEVICE_PATTERN,
    INIT_CHOICES,
    LIGHT_F_MAPS,
    OUTPUT_PATH_KEYS,
    TOMO_FORMATS,
)
from deepetpicker.config.labels import label_diameters_example
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.dataset import CHECKPOINT_SUFFIXES


class Problems:
    """Collects validation problems so that one error lists them all."""

    def __init__(self, source: Optional[str]) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, key: str, value: Any, text: str) -> None:
        self.items.append(f"key '{key}' = {value!r}: {text}")

    def add_error(self, err: DeepETPickerError) -> None:
        msg = str(err)
        prefix = f"{config_name(self.source)}: "
        self.items.append(msg[len(prefix):] if msg.startswith(prefix) else msg)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        where = config_name(self.source)
        if len(self.items) == 1:
            raise DeepETPickerError(f"{where}: {self.items[0]}")
        lines = "\n".join(f"  - {item}" for item in self.items)
        raise DeepETPickerError(f"{where} has {len(self.items)} problems:\n{lines}")


def check_name(cfg: Any, key: str, names: dict, p: Problems) -> None:
    value = getattr(cfg, key)
    if isinstance(value, str) and value in names:
        return
    try:
        canon = canonical_name(value, names, key, cfg.source)
    except DeepETPickerError as err:
        p.add_error(err)
        return
    p.add(key, value, f"write the name as '{canon}'")


def check_str(cfg: Any, key: str, p: Problems) -> None:
    value = getattr(cfg, key)
    if not isinstance(value, str) or not value.strip():
        p.add(key, value, "expected a non-empty text in quotes")


def check_int(cfg: Any, key: str, p: Problems, minimum: Optional[int] = None,
              hint: str = "") -> bool:
    value = getattr(cfg, key)
    if not is_int(value):
        p.add(key, value, f"expected a whole number ({hint})" if hint else
              "expected a whole number")
        return False
    if minimum is not None and value < minimum:
        p.add(key, cfg._given(key), f"must be at least {minimum} ({hint})" if hint else
              f"must be at least {minimum}")
        return False
    return True


def check_float(cfg: Any, key: str, p: Problems, low: Optional[float] = None,
                high: Optional[float] = None, low_open: bool = False, high_open: bool = False,
                hint: str = "") -> bool:
    value = getattr(cfg, key)
    if not is_number(value):
        p.add(key, value, f"expected a number ({hint})")
        return False
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "" if low is None else (f"> {low:g}" if low_open else f">= {low:g}")
        hi = "" if high is None else (f"< {high:g}" if high_open else f"<= {high:g}")
        p.add(key, cfg._given(key), f"must be {' and '.join(s for s in (lo, hi) if s)} ({hint})")
        return False
    return True


def check_dir(cfg: Any, key: str, p: Problems, hint: str) -> None:
    value = getattr(cfg, key)
    if isinstance(value, str) and value and not Path(value).is_dir():
        what = "is a file, not a folder" if Path(value).exists() else "this folder does not exist"
        p.add(key, value, f"{what}; expected {hint}")


# ---------------------------------------------------------------------------------------------
# The preprocessing config
# ---------------------------------------------------------------------------------------------
def check_preprocess_values(cfg: Any, p: Problems) -> None:
    for key in cfg._TEXT_KEYS:
        check_str(cfg, key, p)
    if (isinstance(cfg.dset_name, str) and cfg.dset_name
            and not re.fullmatch(NAME_PATTERN, cfg.dset_name)):
        p.add("dset_name", cfg.dset_name, "is used as a file and folder name and may not "
              "contain '/' or '\\'; use a plain name such as 'SHREC_2021_train'")
    check_names(cfg, p)
    num_ok = check_int(cfg, "num_cls", p, minimum=1, hint="the number of particle classes")
    check_label_diameter(cfg, p)
    if cfg._check_form("ocp_diameter", p):
        diam = cfg.ocp_diameter
        if not diam:
            p.add("ocp_diameter", cfg._given("ocp_diameter"),
                  "is empty; give one particle diameter (voxels) per class, e.g. \"23\"")
        elif any(d < 1 for d in diam):
            p.add("ocp_diameter", cfg._given("ocp_diameter"),
                  "diameters must be positive numbers of voxels")
        elif num_ok and len(diam) != cfg.num_cls:
            example = (diam + [diam[-1]] * cfg.num_cls)[:cfg.num_cls]
            p.add("ocp_diameter", cfg._given("ocp_diameter"),
                  f"gives {len(diam)} diameter{'s' if len(diam) != 1 else ''} but num_cls "
                  f"is {cfg.num_cls}; give exactly one diameter per class, separated by "
                  f"commas (e.g. \"{format_int_list(example)}\")")
    names = cfg.class_names
    if not (isinstance(names, list) and all(isinstance(n, str) and n.strip() for n in names)):
        p.add("class_names", names, "expected a list of names, one per class")
    elif names and num_ok and len(names) != cfg.num_cls:
        p.add("class_names", names, f"gives {len(names)} name(s) but num_cls is "
              f"{cfg.num_cls}; give one name per class or leave the key out")
    if not isinstance(cfg.extra, dict):
        p.add("extra", cfg.extra, "must be a dict of additional keys")


def check_names(cfg: Any, p: Problems) -> None:
    for key, names in cfg._NAME_KEYS:
        check_name(cfg, key, names, p)
    for key, allowed in (("coord_format", COORD_FORMATS), ("tomo_format", TOMO_FORMATS)):
        value = getattr(cfg, key)
        if not (isinstance(value, str) and value in allowed):
            p.add(key, value, f"expected one of {', '.join(allowed)}")


def check_label_diameter(cfg: Any, p: Problems) -> None:
    value = cfg.label_diameter
    if not is_int(value):
        p.add("label_diameter", value, "must be a whole number of voxels, e.g. 9")
    elif value < 3:
        p.add("label_diameter", cfg._given("label_diameter"), "is too small; weak labels "
              "need a diameter of at least 3 voxels (a little smaller than the particles, "
              "e.g. 9)")
    if cfg.label_diameters is None or not cfg._check_form("label_diameters", p):
        return
    diam = cfg.label_diameters
    example = label_diameters_example(cfg.ocp_diameter)
    if not diam:
        p.add("label_diameters", cfg._given("label_diameters"),
              f"is empty; give one weak-label diameter (voxels) per class, e.g. "
              f"\"{example}\", or leave the key out to use label_diameter for every class")
    elif any(d < 3 for d in diam):
        p.add("label_diameters", cfg._given("label_diameters"),
              f"weak labels need a diameter of at least 3 voxels; give about 0.6 x each "
              f"class's particle diameter, e.g. \"{example}\"")
    elif is_int(cfg.num_cls) and cfg.num_cls >= 1 and len(diam) != cfg.num_cls:
        p.add("label_diameters", cfg._given("label_diameters"),
              f"gives {len(diam)} diameter{'s' if len(diam) != 1 else ''} but num_cls is "
              f"{cfg.num_cls}; give exactly one weak-label diameter per class, separated "
              f"by commas (e.g. \"{example}\")")


def check_preprocess_paths(cfg: Any, p: Problems) -> None:
    for key in ("coord_path", "tomo_path"):
        check_dir(cfg, key, p, "the folder with the raw tomograms and their coordinate "
                               "files")
    base = Path(cfg.base_path)
    if not base.is_dir() and not base.parent.is_dir():
        p.add("base_path", cfg.base_path, "neither this folder nor its parent exists; "
              "choose a folder for the outputs that exists or can be created")


# ---------------------------------------------------------------------------------------------
# The training config
# ---------------------------------------------------------------------------------------------
def check_train_values(cfg: Any, p: Problems) -> None:
    for key in cfg._PATH_KEYS:
        check_str(cfg, key, p)
    check_name(cfg, "model_name", MODEL_NAMES, p)
    for key in ("train_set_ids", "val_set_ids"):
        if cfg._check_form(key, p) and not getattr(cfg, key):
            which = "training" if key == "train_set_ids" else "validation"
            p.add(key, cfg._given(key),
                  f"no {which} tomograms; give ids such as \"0\" or \"0-7\" (with one "
                  f"tomogram, use \"0\" for both training and validation)")
    check_int(cfg, "batch_size", p, minimum=1, hint="patches per training step, e.g. 8")
    patch_ok = check_int(cfg, "patch_size", p, minimum=1, hint="e.g. 72")
    if patch_ok and (cfg.patch_size % 8 or cfg.patch_size < 16):
        p.add("patch_size", cfg.patch_size, "the patch edge must be a multiple of 8 and at "
              "least 16 (the network halves it three times); 64 or 72 is usual")
        patch_ok = False
    pad_ok = check_int(cfg, "padding_size", p, minimum=0, hint="e.g. 12")
    if patch_ok and pad_ok and cfg.patch_size - 2 * cfg.padding_size < 8:
        p.add("padding_size", cfg.padding_size,
              f"leaves a stride of {cfg.patch_size - 2 * cfg.padding_size} voxels "
              f"(patch_size {cfg.patch_size} - 2 x padding_size); the stride must be at "
              f"least 8, so use padding_size <= {(cfg.patch_size - 8) // 2}")
    check_float(cfg, "lr", p, low=0.0, low_open=True, hint="the learning rate, e.g. 0.001")
    check_int(cfg, "max_epochs", p, minimum=1, hint="e.g. 60")
    check_float(cfg, "seg_thresh", p, low=0.0, high=1.0, low_open=True, high_open=True,
                hint="the score threshold, e.g. 0.5")
    if cfg._check_form("gpu_ids", p) and any(i < 0 for i in cfg.gpu_ids):
        p.add("gpu_ids", cfg._given("gpu_ids"),
              "GPU ids are numbers from 0, e.g. \"0\" or \"0,1\"")
    if cfg._check_form("f_maps", p):
        if len(cfg.f_maps) != 4 or any(c < 1 for c in cfg.f_maps):
            p.add("f_maps", cfg.f_maps, f"expected 4 positive channel counts, one per "
                  f"network level, e.g. {DEFAULT_F_MAPS} or {LIGHT_F_MAPS} (light model)")
    if not (isinstance(cfg.device, str) and DEVICE_PATTERN.match(cfg.device)):
        p.add("device", cfg.device, "expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    check_name(cfg, "loss", LOSSES, p)
    check_int(cfg, "seed", p, hint="e.g. 0")
    check_int(cfg, "num_workers", p, minimum=0, hint="data-loading processes, e.g. 0")
    check_int(cfg, "val_every", p, minimum=1, hint="validate every N epochs, e.g. 1")
    check_float(cfg, "t_lm", p, low=0.0, high=1.0, high_open=True,
                hint="the local-maximum threshold, e.g. 0.1")
    if cfg.t_dist is not None:
        check_float(cfg, "t_dist", p, low=0.0, low_open=True,
                    hint="the merge distance in voxels, or None for ceil(d / 2) of each "
                         "class's particle diameter")
    check_float(cfg, "background_fraction", p, low=0.0, high=1.0,
                hint="the share of patches drawn away from particles, e.g. 0.0")
    check_float(cfg, "weight_decay", p, low=0.0, hint="AdamW weight decay, e.g. 0.01")
    check_float(cfg, "ema_decay", p, low=0.0, high=1.0, high_open=True,
                hint="the decay of the moving average of the weights, e.g. 0.999; "
                     "0 turns it off")
    check_float(cfg, "class_loss_weight", p, low=0.0,
                hint="the weight of the cross-entropy added to the segmentation loss "
                     "when there are several classes, e.g. 1.0; 0 turns it off")
    for key in ("coord_conv", "pyramid"):
        if not isinstance(getattr(cfg, key), bool):
            p.add(key, getattr(cfg, key), "expected true or false")
    if cfg.localize not in ("class", "foreground"):
        p.add("localize", cfg.localize, "expected 'class' (each class map searched on its "
              "own) or 'foreground' (particles found on all classes together, then "
              "classified)")
    init = cfg.init
    if not (isinstance(init, str) and init.strip()
            and (init in INIT_CHOICES or init.lower().endswith(CHECKPOINT_SUFFIXES))):
        p.add("init", init, "expected 'pretrained' (the weights shipped for the light "
              "network), 'scratch' (random weights) or the path of a checkpoint file "
              "(.pth) to start training from")
    if not isinstance(cfg.mask_path, str):
        p.add("mask_path", cfg.mask_path, "expected the path of a mask volume or of a "
              "folder of masks named like the tomograms, in quotes, or \"\" for none")
    check_augment(cfg.augment, p)


def check_augment(augment: Any, p: Problems) -> None:
    aug = augment
    if not isinstance(aug, dict):
        p.add("augment", aug, f"expected a dict such as {json.dumps(DEFAULT_AUGMENT)}")
        return
    for key, value in {**DEFAULT_AUGMENT, **aug}.items():
        full = f"augment.{key}"
        if key in ("mirror", "crop"):
            if not isinstance(value, bool):
                p.add(full, value, "expected true or false")
        elif key in ("elastic", "rotate", "scale"):
            if not is_number(value) or not 0.0 <= value <= 1.0:
                p.add(full, value, "expected a probability between 0 and 1")
        elif key == "max_angle":
            if not is_number(value) or not 0.0 <= value <= 180.0:
                p.add(full, value, "expected a rotation range in degrees (0-180), e.g. 15")
        elif key == "scale_range":
            if not (isinstance(value, (list, tuple)) and len(value) == 2
                    and all(is_number(v) and v > 0 for v in value)
                    and value[0] <= value[1]):
                p.add(full, value, "expected [low, high] with 0 < low <= high, "
                      "e.g. [0.95, 1.05]")


def check_train_paths(cfg: Any, p: Problems) -> None:
    hint = ("made by preprocessing; run `deepetpicker preprocess` on the preprocessing "
            "config first, or correct the path")
    if not Path(cfg.base_path).is_dir():
        p.add("base_path", cfg.base_path, "this folder does not exist")
    for key in OUTPUT_PATH_KEYS:
        check_dir(cfg, key, p, hint)
    if isinstance(cfg.init, str) and cfg.init not in INIT_CHOICES \
            and not Path(cfg.init).is_file():
        p.add("init", cfg.init, "this checkpoint file does not exist; give the path of a "
              "best.pth or last.pth, or 'pretrained' or 'scratch'")
    if isinstance(cfg.mask_path, str) and cfg.mask_path \
            and not Path(cfg.mask_path).exists():
        p.add("mask_path", cfg.mask_path, "this mask (or folder of masks) does not exist; "
              "correct the path, or write \"\" to train on the whole tomograms")
