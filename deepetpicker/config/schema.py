"""The two configs as typed dataclasses and their checks.

:class:`PreprocessConfig` holds the original program's preprocessing keys;
:class:`TrainConfig` adds the original's training keys and ours. A config is built from a
file's dict (:meth:`PreprocessConfig.from_dict`), from keywords, or, for training, from a
preprocessing config (:meth:`TrainConfig.from_preprocess`); ``validate()`` checks every value
and raises one :class:`DeepETPickerError` listing every problem.
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Union

from deepetpicker.config.grammar import (LABEL_TYPES, LOSSES, MODEL_NAMES, NAME_PATTERN,
                                         NORM_TYPES, OCP_TYPES,
                                         ConfigWarning, _canonical, _is_int, _is_number, _short,
                                         _where, format_ids, format_int_list, parse_ids,
                                         parse_int_list)
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.dataset import (CHECKPOINT_SUFFIXES, COORDS_DIR, CONFIGS_DIR,
                                     NORMALIZED_DIR, OCCUPANCY_DIR, PICK_SUFFIXES, RUNS_DIR,
                                     STANDARDIZED_DIR, VOLUME_SUFFIXES)

PathLike = Union[str, os.PathLike]

PRE_VAR = "pre_config"
TRAIN_VAR = "train_configs"

#: Keys of the original preprocessing config, in the order the original writes them.
PRE_KEYS = ("dset_name", "base_path", "coord_path", "coord_format", "tomo_path", "tomo_format",
            "num_cls", "label_type", "label_diameter", "ocp_type", "ocp_diameter", "norm_type")

#: Keys of the original training config, in the order the original GUI writes them.
TRAIN_KEYS = ("dset_name", "base_path", "coord_path", "coord_format", "tomo_path", "tomo_format",
              "num_cls", "label_name", "label_path", "label_type", "label_diameter", "ocp_type",
              "ocp_diameter", "ocp_name", "ocp_path", "norm_type", "model_name", "train_set_ids",
              "val_set_ids", "batch_size", "patch_size", "padding_size", "lr", "max_epochs",
              "seg_thresh", "gpu_ids")

#: Keys of our own (the original ignores them); written when set or not default.
EXTRA_TRAIN_KEYS = ("f_maps", "device", "loss", "seed", "num_workers", "augment", "t_lm",
                    "t_dist", "coord_conv", "pyramid", "background_fraction", "val_every",
                    "weight_decay", "ema_decay", "localize", "init", "mask_path",
                    "label_diameters", "class_names", "class_loss_weight")

PRE_REQUIRED = ("dset_name", "base_path", "coord_path", "tomo_path", "num_cls",
                "label_diameter", "ocp_diameter")
TRAIN_REQUIRED = ("dset_name", "base_path", "num_cls", "label_diameter", "ocp_diameter",
                  "train_set_ids", "val_set_ids")

#: The network sizes: channels per level of the 3D-ResUNet. "light" (3.4 MB) is almost as
#: accurate as the paper's default.
NETWORK_PRESETS = {"default": (24, 48, 72, 108), "light": (8, 16, 24, 36)}
DEFAULT_F_MAPS = list(NETWORK_PRESETS["default"])
LIGHT_F_MAPS = list(NETWORK_PRESETS["light"])

#: Augmentation switches (mirror, random crop) and per-sample probabilities (elastic
#: deformation, rotation, scaling), with the rotation range in degrees and the scale range.
DEFAULT_AUGMENT = {"mirror": True, "crop": True, "elastic": 0.1, "rotate": 0.1, "scale": 0.1,
                   "max_angle": 15.0, "scale_range": [0.95, 1.05]}

#: Where training starts from (``init``): the weights shipped for the light network, or new
#: random weights; any other value is the path of a checkpoint file.
INIT_CHOICES = ("pretrained", "scratch")

COORD_FORMATS = PICK_SUFFIXES
TOMO_FORMATS = VOLUME_SUFFIXES

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


# ---------------------------------------------------------------------------------------------
# The configs
# ---------------------------------------------------------------------------------------------
# How values that have a string form are parsed, and written when they were set in code.
_FORM_KEYS = {
    "ocp_diameter": (parse_int_list, format_int_list),
    "train_set_ids": (parse_ids, format_ids),
    "val_set_ids": (parse_ids, format_ids),
    "gpu_ids": (parse_int_list, format_int_list),
    "f_maps": (parse_int_list, list),
    "label_diameters": (parse_int_list, list),
}
#: Keys the original program can read only in their string form.
_STRING_FORM_KEYS = ("ocp_diameter", "train_set_ids", "val_set_ids", "gpu_ids")
#: The folders preprocessing fills, by the training keys that name them.
_OUTPUT_PATH_KEYS = ("coord_path", "tomo_path", "label_path", "ocp_path")

_TRAIN_INTS = ("batch_size", "patch_size", "padding_size", "max_epochs", "seed", "num_workers",
               "val_every")
_TRAIN_FLOATS = ("lr", "seg_thresh", "t_lm", "t_dist", "background_fraction", "weight_decay",
                 "ema_decay", "class_loss_weight")


def label_folder_name(label_type: str, label_diameter: int,
                      label_diameters: Optional[list] = None) -> str:
    """Folder name of the weak labels, ``<label_type><label_diameter>`` (e.g. ``gaussian9``);
    with one label diameter per class, ``<label_type><d1>-<d2>-...`` (e.g. ``gaussian5-11-9``),
    so labels painted with other diameters never share a folder."""
    if label_diameters is not None:
        return f"{label_type}{'-'.join(str(int(d)) for d in label_diameters)}"
    return f"{label_type}{label_diameter}"


#: A particle more than this many times wider than its weak label draws a warning. Measured
#: with the light network: 18-voxel rings or globules with 5-voxel labels (3.6 x) collapsed to
#: predicting background, and a 20-voxel ring with the 7-voxel label of a 10-voxel globule
#: (2.9 x) was never found in one of three benchmark seeds (found with its own 13-voxel label).
LABEL_SIZE_WARNING_RATIO = 2.5


def label_diameters_if_needed(diameters: list) -> tuple[int, Optional[list[int]]]:
    """``(label_diameter, label_diameters)`` for classes of these particle diameters: one
    label (about 60 % of the smallest particle) when it suits every class, and one per class
    (:func:`suggested_label_diameters`) only when some class is more than
    :data:`LABEL_SIZE_WARNING_RATIO` times wider than that label."""
    labels = suggested_label_diameters(diameters)
    single = min(labels)
    return single, (labels if too_wide_for_label(diameters, single) else None)


def too_wide_for_label(diameters: list, label_diameter: float) -> list[tuple[int, Any]]:
    """``(class, diameter)`` of the classes (numbered from 1) whose particles are more than
    :data:`LABEL_SIZE_WARNING_RATIO` times wider than a weak label of ``label_diameter``."""
    limit = LABEL_SIZE_WARNING_RATIO * float(label_diameter)
    return [(k, d) for k, d in enumerate(diameters, start=1) if float(d) > limit]


def suggested_label_diameters(diameters: list) -> list[int]:
    """A weak-label diameter for each particle diameter (voxels): about 60 % of it, odd, at
    least 3. A label this size covers the particle's body, not only its centre (which is
    empty in a hollow particle such as a ring)."""
    out = []
    for diameter in diameters:
        d = int(0.6 * float(diameter))
        d += d % 2 == 0
        out.append(max(3, d))
    return out


def derived_paths(base_path: str, norm_type: str, label_name: str,
                  ocp_name: str = OCCUPANCY_DIR) -> dict[str, str]:
    """The folders preprocessing fills under ``base_path``, by the training keys that name them
    (as the original derives them): ``coord_path`` (``base_path/coords``), ``tomo_path`` (the
    normalised tomograms, ``data_std`` or ``data_norm`` after ``norm_type``), ``label_path``
    (``base_path/<label_name>``) and ``ocp_path`` (``base_path/<ocp_name>``)."""
    data = NORMALIZED_DIR if norm_type == "normalization" else STANDARDIZED_DIR
    return {"coord_path": os.path.join(base_path, COORDS_DIR),
            "tomo_path": os.path.join(base_path, data),
            "label_path": os.path.join(base_path, label_name),
            "ocp_path": os.path.join(base_path, ocp_name)}


class _Problems:
    """Collects validation problems so that one error lists them all."""

    def __init__(self, source: Optional[str]) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, key: str, value: Any, text: str) -> None:
        self.items.append(f"key '{key}' = {value!r}: {text}")

    def add_error(self, err: DeepETPickerError) -> None:
        msg = str(err)
        prefix = f"{_where(self.source)}: "
        self.items.append(msg[len(prefix):] if msg.startswith(prefix) else msg)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        where = _where(self.source)
        if len(self.items) == 1:
            raise DeepETPickerError(f"{where}: {self.items[0]}")
        lines = "\n".join(f"  - {item}" for item in self.items)
        raise DeepETPickerError(f"{where} has {len(self.items)} problems:\n{lines}")


@dataclass(kw_only=True)
class PreprocessConfig:
    """Preprocessing settings: where the raw data are and how to make labels from them.

    Fields are the original program's keys. ``ocp_diameter`` is one particle diameter (voxels)
    per class; ``label_diameter`` the one weak-label diameter for all classes. Ours:
    ``label_diameters``, one weak-label diameter per class (None: every class uses
    ``label_diameter``); when it is given in code and ``label_diameter`` is None, that becomes
    the smallest of them, so the original program still reads one diameter. Paths are kept
    as given (strings). ``extra`` keeps unknown keys so they are written back.

    Making a config brings every value to its field's type (``"7,7,9"`` becomes ``[7, 7, 9]``,
    ``"TBall"`` becomes ``"gaussian"``) and checks it, so a config that exists holds typed
    values; the form a value was given in is kept for writing it back.
    """

    VAR = PRE_VAR
    KEYS = PRE_KEYS
    REQUIRED = PRE_REQUIRED
    _TEXT_KEYS = ("dset_name", "base_path", "coord_path", "tomo_path")
    _NAME_KEYS = (("label_type", LABEL_TYPES), ("ocp_type", OCP_TYPES), ("norm_type", NORM_TYPES))

    dset_name: str
    base_path: str
    coord_path: str
    coord_format: str = ".coords"
    tomo_path: str
    tomo_format: str = ".mrc"
    num_cls: int
    label_type: str = "gaussian"
    label_diameter: int
    label_diameters: Optional[list] = None
    ocp_type: str = "sphere"
    ocp_diameter: list
    norm_type: str = "standardization"
    class_names: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    source: Optional[str] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._raw: dict = {}
        self._order: Optional[list] = None
        self._present: set = set()
        self._take_values()
        self.validate(check_paths=False)
        self._warn_small_labels()

    # -- derived paths --------------------------------------------------------------------
    @property
    def label_name(self) -> str:
        """Folder name of the weak labels, ``<label_type><label_diameter>`` (e.g. ``gaussian9``),
        or with ``label_diameters`` ``<label_type><d1>-<d2>-...`` (see
        :func:`label_folder_name`)."""
        return label_folder_name(self.label_type, self.label_diameter, self.label_diameters)

    def class_label_diameters(self) -> list[int]:
        """The weak-label diameter of each class (``label_diameters``, or ``label_diameter``
        for every class)."""
        if self.label_diameters is not None:
            return [int(d) for d in self.label_diameters]
        return [int(self.label_diameter)] * int(self.num_cls)

    def _output_paths(self) -> dict[str, str]:
        """The folders preprocessing fills, by the training keys that name them."""
        return derived_paths(self.base_path, self.norm_type, self.label_name)

    @property
    def data_dir(self) -> Path:
        """Normalised tomograms: ``base_path/data_std`` (z-score) or ``base_path/data_norm``;
        ``tomo_path`` of a training config."""
        return Path(self._output_paths()["tomo_path"])

    @property
    def coords_dir(self) -> Path:
        """Cleaned coordinate files (and ``num_name.csv``): ``base_path/coords``;
        ``coord_path`` of a training config."""
        return Path(self._output_paths()["coord_path"])

    @property
    def label_dir(self) -> Path:
        """Weak labels: ``base_path/<label_type><label_diameter>``; ``label_path`` of a training
        config."""
        return Path(self._output_paths()["label_path"])

    @property
    def ocp_dir(self) -> Path:
        """Occupancy maps: ``base_path/data_ocp``; ``ocp_path`` of a training config."""
        return Path(self._output_paths()["ocp_path"])

    @property
    def configs_dir(self) -> Path:
        """Where config files are saved: ``base_path/configs``."""
        return Path(self.base_path) / CONFIGS_DIR

    @property
    def run_dir(self) -> Path:
        """Training runs of this dataset name: ``base_path/runs/<dset_name>``."""
        return Path(self.base_path) / RUNS_DIR / self.dset_name

    # -- conversion -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, source: Optional[PathLike] = None) -> PreprocessConfig:
        """Build a config from a file's dict; warns about unknown keys (they are kept)."""
        source = str(source) if source is not None else None
        where = _where(source)
        if not isinstance(data, dict):
            raise DeepETPickerError(f"{where}: expected a dict of settings, got a "
                                    f"{type(data).__name__}.")
        missing = [k for k in cls.REQUIRED if k not in data]
        if missing:
            names = ", ".join(f"'{k}'" for k in missing)
            raise DeepETPickerError(
                f"{where}: missing key{'s' if len(missing) > 1 else ''} {names}. "
                f"A {cls.VAR} file needs {', '.join(cls.REQUIRED)}; see configs/README.md.")
        known = {f.name for f in fields(cls)} - {"extra", "source"}
        values, extra = {}, {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise DeepETPickerError(f"{where}: key {key!r} is not a string; keys are "
                                        f"names in quotes such as \"num_cls\".")
            if key in known:
                values[key] = value
            else:
                extra[key] = value
                warnings.warn(f"{where}: unknown key '{key}' = {_short(value)} is kept and "
                              f"written back but not used; check its spelling against "
                              f"configs/README.md.",
                              ConfigWarning, stacklevel=3)
        cfg = cls(**values, extra=extra, source=source)
        cfg._order = list(data)
        cfg._present = set(data)
        return cfg

    def to_dict(self) -> dict:
        """The dict written to a file: the original's keys (original forms kept), ours when set,
        then unknown keys; in the order of the file it was read from, where there was one."""
        out = {}
        defaults = _defaults(type(self))
        for key in self.KEYS + tuple(k for k in EXTRA_TRAIN_KEYS if hasattr(self, k)):
            value = getattr(self, key)
            if key in EXTRA_TRAIN_KEYS and key not in self._present and value == defaults[key]:
                continue
            out[key] = self._written_form(key, value)
        for key, value in self.extra.items():
            out[key] = value
        if self._order:
            first = [k for k in self._order if k in out]
            out = {**{k: out[k] for k in first}, **{k: v for k, v in out.items() if k not in first}}
        return copy.deepcopy(out)

    def _written_form(self, key: str, value: Any) -> Any:
        if key in _FORM_KEYS and value is None:
            return value
        raw = self._raw.get(key)
        if (key in _FORM_KEYS and key in self._raw) or (key == "label_diameter"
                                                          and isinstance(raw, str)):
            if key in _STRING_FORM_KEYS and not isinstance(raw, str):
                return _FORM_KEYS[key][1](value)  # the original reads these only as strings
            try:
                if self._parse_form(key, raw, self.source) == value:
                    return raw
            except DeepETPickerError:
                pass
        if key in _FORM_KEYS:
            return _FORM_KEYS[key][1](value)
        return value

    def _given(self, key: str) -> Any:
        """The value of ``key`` in the form it was given (``"7,9"`` for ``[7, 9]``, ``0`` for
        ``0.0``) while that form still means the current value; for messages."""
        value = getattr(self, key)
        if key in self._raw:
            try:
                if self._parse_form(key, self._raw[key], self.source) == value:
                    return self._raw[key]
            except DeepETPickerError:
                pass
        return value

    @staticmethod
    def _parse_form(key: str, raw: Any, source: Optional[str] = None) -> Any:
        if key in _FORM_KEYS:
            return _FORM_KEYS[key][0](raw, key=key, source=source)
        if key == "label_diameter":
            return int(raw) if isinstance(raw, str) else raw
        return raw

    # -- typed values ---------------------------------------------------------------------
    def _take_values(self) -> None:
        """Bring each value given in another accepted form to its field's type: number and id
        strings to lists of ints, names to their canonical spelling, path objects to text,
        whole numbers to int and numbers to float. The form given is kept (``_raw``) for
        writing it back and for messages. A value that cannot be read stays as given, for
        :meth:`validate` to report."""
        for key in self._TEXT_KEYS:
            _take_text(self, key)
        for key, names in self._NAME_KEYS:
            _take_name(self, key, names)
        for key, allowed in (("coord_format", COORD_FORMATS), ("tomo_format", TOMO_FORMATS)):
            value = getattr(self, key)
            fixed = value.strip().lower() if isinstance(value, str) else value
            if isinstance(fixed, str) and fixed and not fixed.startswith("."):
                fixed = "." + fixed
            if fixed in allowed:
                setattr(self, key, fixed)
        _take_int(self, "num_cls")
        if self.label_diameters is not None:
            self._take_form("label_diameters")
            per_class = self.label_diameters
            if (self.label_diameter is None and isinstance(per_class, list) and per_class
                    and all(_is_int(v) for v in per_class)):
                self.label_diameter = min(per_class)
        value = self.label_diameter
        if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
            self._raw["label_diameter"] = value
            self.label_diameter = int(value)
        else:
            _take_int(self, "label_diameter")
        self._take_form("ocp_diameter")

    def _take_form(self, key: str) -> None:
        """Parse a value that may come in string form; remember that form for writing."""
        value = getattr(self, key)
        if isinstance(value, list) and all(_is_int(v) for v in value):
            setattr(self, key, [int(v) for v in value])
            return
        try:
            parsed = self._parse_form(key, value, self.source)
        except DeepETPickerError:
            return  # reported by validate()
        self._raw[key] = copy.deepcopy(value)
        setattr(self, key, parsed)

    # -- validation -----------------------------------------------------------------------
    def validate(self, check_paths: bool = False) -> "PreprocessConfig":
        """Check every value (and, with ``check_paths``, that input folders exist).

        Raises one :class:`DeepETPickerError` listing every problem, each naming the file, the
        key, the value and what is expected. Changes nothing; returns the config itself.
        """
        p = _Problems(self.source)
        self._check_values(p)
        p.raise_if_any()
        if check_paths:
            self._check_paths(p)
            p.raise_if_any()
        return self

    def _check_form(self, key: str, p: _Problems) -> bool:
        """Whether ``key`` holds a list of ints; reports why not."""
        value = getattr(self, key)
        if isinstance(value, list) and all(_is_int(v) for v in value):
            return True
        try:
            parsed = self._parse_form(key, value, self.source)
        except DeepETPickerError as err:
            p.add_error(err)
            return False
        p.add(key, value, f"expected a list of whole numbers such as {parsed}")
        return False

    def _check_values(self, p: _Problems) -> None:
        for key in self._TEXT_KEYS:
            _check_str(self, key, p)
        if (isinstance(self.dset_name, str) and self.dset_name
                and not re.fullmatch(NAME_PATTERN, self.dset_name)):
            p.add("dset_name", self.dset_name, "is used as a file and folder name and may not "
                  "contain '/' or '\\'; use a plain name such as 'SHREC_2021_train'")
        self._check_names(p)
        num_ok = _check_int(self, "num_cls", p, minimum=1, hint="the number of particle classes")
        self._check_label_diameter(p)
        if self._check_form("ocp_diameter", p):
            diam = self.ocp_diameter
            if not diam:
                p.add("ocp_diameter", self._given("ocp_diameter"),
                      "is empty; give one particle diameter (voxels) per class, e.g. \"23\"")
            elif any(d < 1 for d in diam):
                p.add("ocp_diameter", self._given("ocp_diameter"),
                      "diameters must be positive numbers of voxels")
            elif num_ok and len(diam) != self.num_cls:
                example = (diam + [diam[-1]] * self.num_cls)[:self.num_cls]
                p.add("ocp_diameter", self._given("ocp_diameter"),
                      f"gives {len(diam)} diameter{'s' if len(diam) != 1 else ''} but num_cls "
                      f"is {self.num_cls}; give exactly one diameter per class, separated by "
                      f"commas (e.g. \"{format_int_list(example)}\")")
        names = self.class_names
        if not (isinstance(names, list) and all(isinstance(n, str) and n.strip() for n in names)):
            p.add("class_names", names, "expected a list of names, one per class")
        elif names and num_ok and len(names) != self.num_cls:
            p.add("class_names", names, f"gives {len(names)} name(s) but num_cls is "
                  f"{self.num_cls}; give one name per class or leave the key out")
        if not isinstance(self.extra, dict):
            p.add("extra", self.extra, "must be a dict of additional keys")

    def _check_names(self, p: _Problems) -> None:
        for key, names in self._NAME_KEYS:
            _check_name(self, key, names, p)
        for key, allowed in (("coord_format", COORD_FORMATS), ("tomo_format", TOMO_FORMATS)):
            value = getattr(self, key)
            if not (isinstance(value, str) and value in allowed):
                p.add(key, value, f"expected one of {', '.join(allowed)}")

    def _check_label_diameter(self, p: _Problems) -> None:
        value = self.label_diameter
        if not _is_int(value):
            p.add("label_diameter", value, "must be a whole number of voxels, e.g. 9")
        elif value < 3:
            p.add("label_diameter", self._given("label_diameter"), "is too small; weak labels "
                  "need a diameter of at least 3 voxels (a little smaller than the particles, "
                  "e.g. 9)")
        if self.label_diameters is None or not self._check_form("label_diameters", p):
            return
        diam = self.label_diameters
        example = self._label_diameters_example()
        if not diam:
            p.add("label_diameters", self._given("label_diameters"),
                  f"is empty; give one weak-label diameter (voxels) per class, e.g. "
                  f"\"{example}\", or leave the key out to use label_diameter for every class")
        elif any(d < 3 for d in diam):
            p.add("label_diameters", self._given("label_diameters"),
                  f"weak labels need a diameter of at least 3 voxels; give about 0.6 x each "
                  f"class's particle diameter, e.g. \"{example}\"")
        elif _is_int(self.num_cls) and self.num_cls >= 1 and len(diam) != self.num_cls:
            p.add("label_diameters", self._given("label_diameters"),
                  f"gives {len(diam)} diameter{'s' if len(diam) != 1 else ''} but num_cls is "
                  f"{self.num_cls}; give exactly one weak-label diameter per class, separated "
                  f"by commas (e.g. \"{example}\")")

    def _label_diameters_example(self) -> str:
        """``label_diameters`` suggested from the particle diameters, for messages."""
        diam = self.ocp_diameter
        if isinstance(diam, list) and diam and all(_is_int(d) and d > 0 for d in diam):
            return format_int_list(suggested_label_diameters(diam))
        return "13,9,11"

    def _warn_small_labels(self) -> None:
        """Warn when one label diameter serves all classes and some class's particles are
        much wider than it: the label may then cover only the particle's centre, which in a
        hollow particle looks like the background, and the network learns background."""
        if self.label_diameters is not None:
            return
        big = too_wide_for_label(self.ocp_diameter, self.label_diameter)
        if not big:
            return
        names = self.class_names if len(self.class_names) == self.num_cls else []
        classes = "; ".join(
            f"class {k}{f' ({names[k - 1]})' if names else ''} has particles of {d} voxels "
            f"(ocp_diameter), {d / self.label_diameter:.1f} x the label" for k, d in big)
        warnings.warn(
            f"{_where(self.source)}: weak labels of {self.label_diameter} voxels "
            f"(label_diameter) serve every class, but {classes}. A label that small covers "
            f"only the particle's centre (empty inside a hollow particle such as a ring), and "
            f"training may learn to predict background there. Give one label diameter per "
            f"class with label_diameters, e.g. \"{self._label_diameters_example()}\" "
            f"(about 0.6 x each particle diameter).", ConfigWarning, stacklevel=4)

    def _check_paths(self, p: _Problems) -> None:
        for key in ("coord_path", "tomo_path"):
            _check_dir(self, key, p, "the folder with the raw tomograms and their coordinate "
                                     "files")
        base = Path(self.base_path)
        if not base.is_dir() and not base.parent.is_dir():
            p.add("base_path", self.base_path, "neither this folder nor its parent exists; "
                  "choose a folder for the outputs that exists or can be created")


@dataclass(kw_only=True)
class TrainConfig(PreprocessConfig):
    """Training settings: the preprocessing keys (pointing at its outputs) plus the training
    keys of the original and our own.

    ``tomo_path``, ``coord_path``, ``label_path`` and ``ocp_path`` are the preprocessing outputs
    (normalised tomograms, coordinates, weak labels, occupancy maps); when a file leaves them
    out they are derived from ``base_path`` as the original does (:func:`derived_paths`), and
    ``data_dir``, ``coords_dir``, ``label_dir`` and ``ocp_dir`` are these keys.
    """

    VAR = TRAIN_VAR
    KEYS = TRAIN_KEYS
    REQUIRED = TRAIN_REQUIRED
    _PATH_KEYS = ("label_name", "label_path", "ocp_name", "ocp_path")

    coord_path: str = ""
    tomo_path: str = ""
    label_name: str = ""
    label_path: str = ""
    ocp_name: str = OCCUPANCY_DIR
    ocp_path: str = ""
    model_name: str = "ResUNet"
    train_set_ids: list
    val_set_ids: list
    batch_size: int = 8
    patch_size: int = 72
    padding_size: int = 12
    lr: float = 1e-3
    max_epochs: int = 60
    seg_thresh: float = 0.5
    gpu_ids: list = field(default_factory=lambda: [0])
    # ours
    f_maps: list = field(default_factory=lambda: list(DEFAULT_F_MAPS))
    device: str = "auto"
    loss: str = "dice"
    seed: int = 0
    num_workers: int = 0
    augment: dict = field(default_factory=lambda: copy.deepcopy(DEFAULT_AUGMENT))
    t_lm: float = 0.1
    t_dist: Optional[float] = None
    coord_conv: bool = True
    pyramid: bool = True
    background_fraction: float = 0.0
    val_every: int = 1
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    localize: str = "foreground"
    init: str = "pretrained"
    mask_path: str = ""
    class_loss_weight: float = 1.0

    def _warn_small_labels(self) -> None:
        """Nothing: the labels are made by preprocessing, whose config warns about their
        size."""

    # -- derived paths: the explicit keys of a training config ----------------------------
    def _output_paths(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in _OUTPUT_PATH_KEYS}

    @property
    def stride(self) -> int:
        """Overlap-tile stride, ``patch_size - 2 * padding_size``."""
        return self.patch_size - 2 * self.padding_size

    @classmethod
    def from_preprocess(cls, pre: PreprocessConfig, train_ids: Any, val_ids: Any,
                        **overrides) -> "TrainConfig":
        """The training config for a preprocessed dataset, built as the original GUI does.

        ``tomo_path`` becomes the normalised data folder, ``coord_path`` ``base_path/coords``,
        ``label_path`` ``base_path/<label_type><d>`` and ``ocp_path`` ``base_path/data_ocp``.
        ``train_ids``/``val_ids`` are ``"0-7"``-style strings, ints or lists (kept in that
        form). ``overrides`` set any other field (``dset_name`` defaults to the preprocessing
        name with ``_preprocess`` replaced by ``_train``).
        """
        pre.validate(check_paths=False)
        known = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise DeepETPickerError(
                f"unknown training setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)}; known settings are listed in "
                f"configs/README.md.")
        name = re.sub(r"_preprocess$", "", pre.dset_name) + "_train"
        data = {
            "dset_name": name,
            "base_path": pre.base_path,
            "coord_format": pre.coord_format,
            "tomo_format": pre.tomo_format,
            "num_cls": pre.num_cls,
            "label_name": pre.label_name,
            "label_type": pre.label_type,
            "label_diameter": pre._written_form("label_diameter", pre.label_diameter),
            "ocp_type": pre.ocp_type,
            "ocp_diameter": pre._written_form("ocp_diameter", pre.ocp_diameter),
            "ocp_name": OCCUPANCY_DIR,
            "norm_type": pre.norm_type,
            "train_set_ids": train_ids,
            "val_set_ids": val_ids,
            **pre._output_paths(),
        }
        if pre.label_diameters is not None:
            data["label_diameters"] = pre._written_form("label_diameters", pre.label_diameters)
        if pre.class_names:
            data["class_names"] = list(pre.class_names)
        data.update(overrides)
        cfg = cls(**data)
        cfg._present = {k for k in overrides if k in EXTRA_TRAIN_KEYS}
        return cfg

    def to_preprocess(self) -> PreprocessConfig:
        """The preprocessing settings of this config (paths as in this config)."""
        values = {k: self._written_form(k, getattr(self, k)) for k in PRE_KEYS}
        if self.label_diameters is not None:
            values["label_diameters"] = self._written_form("label_diameters",
                                                           self.label_diameters)
        return PreprocessConfig(**values, source=self.source)

    # -- typed values ---------------------------------------------------------------------
    def _take_values(self) -> None:
        super()._take_values()
        for key in self._PATH_KEYS + ("init", "mask_path"):
            _take_text(self, key)
        if isinstance(self.init, str) and self.init.strip().lower() in INIT_CHOICES:
            self.init = self.init.strip().lower()
        for key, names in (("model_name", MODEL_NAMES), ("loss", LOSSES)):
            _take_name(self, key, names)
        self._fill_derived_paths()
        for key in ("train_set_ids", "val_set_ids", "gpu_ids", "f_maps"):
            self._take_form(key)
        for key in _TRAIN_INTS:
            _take_int(self, key)
        for key in _TRAIN_FLOATS:
            _take_float(self, key)  # t_dist None stays None
        if isinstance(self.device, str) and _DEVICE_RE.match(self.device.strip().lower()):
            self.device = self.device.strip().lower()
        self._take_augment()

    def _fill_derived_paths(self) -> None:
        """Paths a file may leave out, derived from ``base_path`` as the original does."""
        if not isinstance(self.base_path, str) or not self.base_path:
            return
        per_class = self.label_diameters
        if not self.label_name and isinstance(self.label_type, str) \
                and self.label_type in LABEL_TYPES and _is_int(self.label_diameter) \
                and (per_class is None or (isinstance(per_class, list)
                                           and all(_is_int(d) for d in per_class))):
            self.label_name = label_folder_name(self.label_type, self.label_diameter,
                                                per_class)
        label_name = self.label_name if isinstance(self.label_name, str) else ""
        ocp_name = self.ocp_name if isinstance(self.ocp_name, str) else ""
        derived = derived_paths(self.base_path, self.norm_type, label_name, ocp_name)
        named = {"label_path": label_name, "ocp_path": ocp_name}
        for key, path in derived.items():
            if not getattr(self, key) and named.get(key, True):
                setattr(self, key, path)

    def _take_augment(self) -> None:
        """Complete the augmentation settings with the defaults; warn about unknown ones."""
        if not isinstance(self.augment, dict):
            return  # reported by validate()
        merged = copy.deepcopy(DEFAULT_AUGMENT)
        merged.update(self.augment)
        for key, value in merged.items():
            if key not in DEFAULT_AUGMENT:
                warnings.warn(f"{_where(self.source)}: unknown augmentation setting "
                              f"'{key}' = {_short(value)} is kept but not used; known ones are "
                              f"{', '.join(DEFAULT_AUGMENT)}.", ConfigWarning, stacklevel=5)
        self.augment = merged

    # -- validation -----------------------------------------------------------------------
    def _check_values(self, p: _Problems) -> None:
        super()._check_values(p)
        for key in self._PATH_KEYS:
            _check_str(self, key, p)
        _check_name(self, "model_name", MODEL_NAMES, p)
        for key in ("train_set_ids", "val_set_ids"):
            if self._check_form(key, p) and not getattr(self, key):
                which = "training" if key == "train_set_ids" else "validation"
                p.add(key, self._given(key),
                      f"no {which} tomograms; give ids such as \"0\" or \"0-7\" (with one "
                      f"tomogram, use \"0\" for both training and validation)")
        _check_int(self, "batch_size", p, minimum=1, hint="patches per training step, e.g. 8")
        patch_ok = _check_int(self, "patch_size", p, minimum=1, hint="e.g. 72")
        if patch_ok and (self.patch_size % 8 or self.patch_size < 16):
            p.add("patch_size", self.patch_size, "the patch edge must be a multiple of 8 and at "
                  "least 16 (the network halves it three times); 64 or 72 is usual")
            patch_ok = False
        pad_ok = _check_int(self, "padding_size", p, minimum=0, hint="e.g. 12")
        if patch_ok and pad_ok and self.patch_size - 2 * self.padding_size < 8:
            p.add("padding_size", self.padding_size,
                  f"leaves a stride of {self.patch_size - 2 * self.padding_size} voxels "
                  f"(patch_size {self.patch_size} - 2 x padding_size); the stride must be at "
                  f"least 8, so use padding_size <= {(self.patch_size - 8) // 2}")
        _check_float(self, "lr", p, low=0.0, low_open=True, hint="the learning rate, e.g. 0.001")
        _check_int(self, "max_epochs", p, minimum=1, hint="e.g. 60")
        _check_float(self, "seg_thresh", p, low=0.0, high=1.0, low_open=True, high_open=True,
                     hint="the score threshold, e.g. 0.5")
        if self._check_form("gpu_ids", p) and any(i < 0 for i in self.gpu_ids):
            p.add("gpu_ids", self._given("gpu_ids"),
                  "GPU ids are numbers from 0, e.g. \"0\" or \"0,1\"")
        if self._check_form("f_maps", p):
            if len(self.f_maps) != 4 or any(c < 1 for c in self.f_maps):
                p.add("f_maps", self.f_maps, f"expected 4 positive channel counts, one per "
                      f"network level, e.g. {DEFAULT_F_MAPS} or {LIGHT_F_MAPS} (light model)")
        if not (isinstance(self.device, str) and _DEVICE_RE.match(self.device)):
            p.add("device", self.device, "expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
        _check_name(self, "loss", LOSSES, p)
        _check_int(self, "seed", p, hint="e.g. 0")
        _check_int(self, "num_workers", p, minimum=0, hint="data-loading processes, e.g. 0")
        _check_int(self, "val_every", p, minimum=1, hint="validate every N epochs, e.g. 1")
        _check_float(self, "t_lm", p, low=0.0, high=1.0, high_open=True,
                     hint="the local-maximum threshold, e.g. 0.1")
        if self.t_dist is not None:
            _check_float(self, "t_dist", p, low=0.0, low_open=True,
                         hint="the merge distance in voxels, or None for ceil(d / 2) of each "
                              "class's particle diameter")
        _check_float(self, "background_fraction", p, low=0.0, high=1.0,
                     hint="the share of patches drawn away from particles, e.g. 0.0")
        _check_float(self, "weight_decay", p, low=0.0, hint="AdamW weight decay, e.g. 0.01")
        _check_float(self, "ema_decay", p, low=0.0, high=1.0, high_open=True,
                     hint="the decay of the moving average of the weights, e.g. 0.999; "
                          "0 turns it off")
        _check_float(self, "class_loss_weight", p, low=0.0,
                     hint="the weight of the cross-entropy added to the segmentation loss "
                          "when there are several classes, e.g. 1.0; 0 turns it off")
        for key in ("coord_conv", "pyramid"):
            if not isinstance(getattr(self, key), bool):
                p.add(key, getattr(self, key), "expected true or false")
        if self.localize not in ("class", "foreground"):
            p.add("localize", self.localize, "expected 'class' (each class map searched on its "
                  "own) or 'foreground' (particles found on all classes together, then "
                  "classified)")
        init = self.init
        if not (isinstance(init, str) and init.strip()
                and (init in INIT_CHOICES or init.lower().endswith(CHECKPOINT_SUFFIXES))):
            p.add("init", init, "expected 'pretrained' (the weights shipped for the light "
                  "network), 'scratch' (random weights) or the path of a checkpoint file "
                  "(.pth) to start training from")
        if not isinstance(self.mask_path, str):
            p.add("mask_path", self.mask_path, "expected the path of a mask volume or of a "
                  "folder of masks named like the tomograms, in quotes, or \"\" for none")
        self._check_augment(p)

    def _check_augment(self, p: _Problems) -> None:
        aug = self.augment
        if not isinstance(aug, dict):
            p.add("augment", aug, f"expected a dict such as {json.dumps(DEFAULT_AUGMENT)}")
            return
        for key, value in {**DEFAULT_AUGMENT, **aug}.items():
            full = f"augment.{key}"
            if key in ("mirror", "crop"):
                if not isinstance(value, bool):
                    p.add(full, value, "expected true or false")
            elif key in ("elastic", "rotate", "scale"):
                if not _is_number(value) or not 0.0 <= value <= 1.0:
                    p.add(full, value, "expected a probability between 0 and 1")
            elif key == "max_angle":
                if not _is_number(value) or not 0.0 <= value <= 180.0:
                    p.add(full, value, "expected a rotation range in degrees (0-180), e.g. 15")
            elif key == "scale_range":
                if not (isinstance(value, (list, tuple)) and len(value) == 2
                        and all(_is_number(v) and v > 0 for v in value)
                        and value[0] <= value[1]):
                    p.add(full, value, "expected [low, high] with 0 < low <= high, "
                          "e.g. [0.95, 1.05]")

    def _check_paths(self, p: _Problems) -> None:
        hint = ("made by preprocessing; run `deepetpicker preprocess` on the preprocessing "
                "config first, or correct the path")
        if not Path(self.base_path).is_dir():
            p.add("base_path", self.base_path, "this folder does not exist")
        for key in _OUTPUT_PATH_KEYS:
            _check_dir(self, key, p, hint)
        if isinstance(self.init, str) and self.init not in INIT_CHOICES \
                and not Path(self.init).is_file():
            p.add("init", self.init, "this checkpoint file does not exist; give the path of a "
                  "best.pth or last.pth, or 'pretrained' or 'scratch'")
        if isinstance(self.mask_path, str) and self.mask_path \
                and not Path(self.mask_path).exists():
            p.add("mask_path", self.mask_path, "this mask (or folder of masks) does not exist; "
                  "correct the path, or write \"\" to train on the whole tomograms")


# ---------------------------------------------------------------------------------------------
# Typed values and field checks
# ---------------------------------------------------------------------------------------------
def _take_text(cfg, key: str) -> None:
    value = getattr(cfg, key)
    if isinstance(value, os.PathLike):
        setattr(cfg, key, os.fspath(value))


def _take_int(cfg, key: str) -> None:
    value = getattr(cfg, key)
    if _is_int(value) and type(value) is not int:
        cfg._raw[key] = value
        setattr(cfg, key, int(value))


def _take_float(cfg, key: str) -> None:
    value = getattr(cfg, key)
    if _is_number(value) and type(value) is not float:
        cfg._raw[key] = value
        setattr(cfg, key, float(value))


def _take_name(cfg, key: str, names: dict) -> None:
    try:
        setattr(cfg, key, _canonical(getattr(cfg, key), names, key, cfg.source))
    except DeepETPickerError:
        pass  # reported by validate()


def _check_name(cfg, key: str, names: dict, p: _Problems) -> None:
    value = getattr(cfg, key)
    if isinstance(value, str) and value in names:
        return
    try:
        canon = _canonical(value, names, key, cfg.source)
    except DeepETPickerError as err:
        p.add_error(err)
        return
    p.add(key, value, f"write the name as '{canon}'")


def _check_str(cfg, key: str, p: _Problems) -> None:
    value = getattr(cfg, key)
    if not isinstance(value, str) or not value.strip():
        p.add(key, value, "expected a non-empty text in quotes")


def _check_int(cfg, key: str, p: _Problems, minimum: Optional[int] = None,
               hint: str = "") -> bool:
    value = getattr(cfg, key)
    if not _is_int(value):
        p.add(key, value, f"expected a whole number ({hint})" if hint else
              "expected a whole number")
        return False
    if minimum is not None and value < minimum:
        p.add(key, cfg._given(key), f"must be at least {minimum} ({hint})" if hint else
              f"must be at least {minimum}")
        return False
    return True


def _check_float(cfg, key: str, p: _Problems, low: Optional[float] = None,
                 high: Optional[float] = None, low_open: bool = False, high_open: bool = False,
                 hint: str = "") -> bool:
    value = getattr(cfg, key)
    if not _is_number(value):
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


def _check_dir(cfg, key: str, p: _Problems, hint: str) -> None:
    value = getattr(cfg, key)
    if isinstance(value, str) and value and not Path(value).is_dir():
        what = "is a file, not a folder" if Path(value).exists() else "this folder does not exist"
        p.add(key, value, f"{what}; expected {hint}")


def _defaults(cls) -> dict:
    out = {}
    for f in fields(cls):
        out[f.name] = f.default_factory() if f.default_factory is not MISSING else f.default
    return out
