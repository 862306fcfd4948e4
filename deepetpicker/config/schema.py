"""The two configs as typed dataclasses and their checks.

:class:`PreprocessConfig` holds the original program's preprocessing keys;
:class:`TrainConfig` adds the original's training keys and ours. A config is built from a
file's dict (:meth:`PreprocessConfig.from_dict`), from keywords, or, for training, from a
preprocessing config (:meth:`TrainConfig.from_preprocess`); ``validate()`` checks every value
and raises one :class:`DeepETPickerError` listing every problem.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from deepetpicker.config.checks import (
    Problems,
    check_preprocess_paths,
    check_preprocess_values,
    check_train_paths,
    check_train_values,
)
from deepetpicker.config.grammar import (
    LABEL_TYPES,
    LOSSES,
    MODEL_NAMES,
    NORM_TYPES,
    OCP_TYPES,
    ConfigWarning,
    canonical_name,
    config_name,
    format_ids,
    format_int_list,
    is_int,
    is_number,
    parse_ids,
    parse_int_list,
    short_repr,
)
from deepetpicker.config.keys import (
    COORD_FORMATS,
    DEFAULT_AUGMENT,
    DEFAULT_F_MAPS,
    DEVICE_PATTERN,
    EXTRA_TRAIN_KEYS,
    INIT_CHOICES,
    OUTPUT_PATH_KEYS,
    PRE_KEYS,
    PRE_REQUIRED,
    PRE_VAR,
    TOMO_FORMATS,
    TRAIN_KEYS,
    TRAIN_REQUIRED,
    TRAIN_VAR,
)
from deepetpicker.config.labels import (
    label_diameters_example,
    label_folder_name,
    too_wide_for_label,
)
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.dataset import (
    CONFIGS_DIR,
    COORDS_DIR,
    NORMALIZED_DIR,
    OCCUPANCY_DIR,
    RUNS_DIR,
    STANDARDIZED_DIR,
)
from deepetpicker.types import PathLike

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

_TRAIN_INTS = ("batch_size", "patch_size", "padding_size", "max_epochs", "seed", "num_workers",
               "val_every")
_TRAIN_FLOATS = ("lr", "seg_thresh", "t_lm", "t_dist", "background_fraction", "weight_decay",
                 "ema_decay", "class_loss_weight")

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
        where = config_name(source)
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
                warnings.warn(f"{where}: unknown key '{key}' = {short_repr(value)} is kept and "
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
                    and all(is_int(v) for v in per_class)):
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
        if isinstance(value, list) and all(is_int(v) for v in value):
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
        p = Problems(self.source)
        self._check_values(p)
        p.raise_if_any()
        if check_paths:
            self._check_paths(p)
            p.raise_if_any()
        return self

    def _check_form(self, key: str, p: Problems) -> bool:
        """Whether ``key`` holds a list of ints; reports why not."""
        value = getattr(self, key)
        if isinstance(value, list) and all(is_int(v) for v in value):
            return True
        try:
            parsed = self._parse_form(key, value, self.source)
        except DeepETPickerError as err:
            p.add_error(err)
            return False
        p.add(key, value, f"expected a list of whole numbers such as {parsed}")
        return False

    def _check_values(self, p: Problems) -> None:
        check_preprocess_values(self, p)

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
            f"{config_name(self.source)}: weak labels of {self.label_diameter} voxels "
            f"(label_diameter) serve every class, but {classes}. A label that small covers "
            f"only the particle's centre (empty inside a hollow particle such as a ring), and "
            f"training may learn to predict background there. Give one label diameter per "
            f"class with label_diameters, e.g. \"{label_diameters_example(self.ocp_diameter)}\" "
            f"(about 0.6 x each particle diameter).", ConfigWarning, stacklevel=4)

    def _check_paths(self, p: Problems) -> None:
        check_preprocess_paths(self, p)


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
        return {key: getattr(self, key) for key in OUTPUT_PATH_KEYS}

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
        if isinstance(self.device, str) and DEVICE_PATTERN.match(self.device.strip().lower()):
            self.device = self.device.strip().lower()
        self._take_augment()

    def _fill_derived_paths(self) -> None:
        """Paths a file may leave out, derived from ``base_path`` as the original does."""
        if not isinstance(self.base_path, str) or not self.base_path:
            return
        per_class = self.label_diameters
        if not self.label_name and isinstance(self.label_type, str) \
                and self.label_type in LABEL_TYPES and is_int(self.label_diameter) \
                and (per_class is None or (isinstance(per_class, list)
                                           and all(is_int(d) for d in per_class))):
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
                warnings.warn(f"{config_name(self.source)}: unknown augmentation setting "
                              f"'{key}' = {short_repr(value)} is kept but not used; known ones are "
                              f"{', '.join(DEFAULT_AUGMENT)}.", ConfigWarning, stacklevel=5)
        self.augment = merged

    # -- validation -----------------------------------------------------------------------
    def _check_values(self, p: Problems) -> None:
        super()._check_values(p)
        check_train_values(self, p)

    def _check_paths(self, p: Problems) -> None:
        check_train_paths(self, p)


# ---------------------------------------------------------------------------------------------
# Typed values and field checks
# ---------------------------------------------------------------------------------------------
def _take_text(cfg, key: str) -> None:
    value = getattr(cfg, key)
    if isinstance(value, os.PathLike):
        setattr(cfg, key, os.fspath(value))


def _take_int(cfg, key: str) -> None:
    value = getattr(cfg, key)
    if is_int(value) and type(value) is not int:
        cfg._raw[key] = value
        setattr(cfg, key, int(value))


def _take_float(cfg, key: str) -> None:
    value = getattr(cfg, key)
    if is_number(value) and type(value) is not float:
        cfg._raw[key] = value
        setattr(cfg, key, float(value))


def _take_name(cfg, key: str, names: dict) -> None:
    try:
        setattr(cfg, key, canonical_name(getattr(cfg, key), names, key, cfg.source))
    except DeepETPickerError:
        pass  # reported by validate()



def _defaults(cls) -> dict:
    out = {}
    for f in fields(cls):
        out[f.name] = f.default_factory() if f.default_factory is not MISSING else f.default
    return out
