"""Typed preprocessing and training configs, read from and written to the original file format.

``grammar``: the value grammar: tomogram id lists (``"0-7,9"``), number lists (``"7,7,9"``),
the accepted names of label types, normalisations, losses and models, and their written forms.
``keys``: the keys of the two config files, which are required, and their defaults and presets
(``NETWORK_PRESETS``, ``DEFAULT_AUGMENT``).
``schema``: :class:`PreprocessConfig` and :class:`TrainConfig` (typed values, the folders
derived from ``base_path``, conversion to and from a file's dict); ``checks``: what
``validate()`` checks; ``labels``: the label-size rule (how wide the weak labels are).
``files``: reading config files without running them, and writing them exactly as the original
program lays them out, so each program loads the other's files.
"""

from deepetpicker.config.files import (
    format_config,
    load_config,
    load_preprocess_config,
    load_train_config,
    read_config_dict,
    save_config,
    written_by_save_config,
)
from deepetpicker.config.grammar import (
    LABEL_TYPES,
    LOSS_NAMES,
    LOSSES,
    MODEL_NAMES,
    NORM_TYPES,
    OCP_TYPES,
    ConfigWarning,
    canonical_label_type,
    format_ids,
    format_int_list,
    parse_ids,
    parse_int_list,
    warning_line,
)
from deepetpicker.config.keys import (
    COORD_FORMATS,
    DEFAULT_AUGMENT,
    DEFAULT_F_MAPS,
    EXTRA_TRAIN_KEYS,
    INIT_CHOICES,
    LIGHT_F_MAPS,
    NETWORK_PRESETS,
    PRE_KEYS,
    PRE_REQUIRED,
    PRE_VAR,
    TOMO_FORMATS,
    TRAIN_KEYS,
    TRAIN_REQUIRED,
    TRAIN_VAR,
)
from deepetpicker.config.labels import (
    LABEL_SIZE_WARNING_RATIO,
    label_diameters_if_needed,
    suggested_label_diameters,
)
from deepetpicker.config.schema import PreprocessConfig, TrainConfig
from deepetpicker.types import PathLike

__all__ = [
    "COORD_FORMATS", "DEFAULT_AUGMENT", "DEFAULT_F_MAPS", "EXTRA_TRAIN_KEYS", "INIT_CHOICES",
    "LABEL_SIZE_WARNING_RATIO", "LABEL_TYPES", "LIGHT_F_MAPS", "LOSSES", "LOSS_NAMES",
    "MODEL_NAMES", "NETWORK_PRESETS",
    "NORM_TYPES", "OCP_TYPES", "PRE_KEYS", "PRE_REQUIRED", "PRE_VAR", "TOMO_FORMATS", "TRAIN_KEYS",
    "TRAIN_REQUIRED", "TRAIN_VAR", "ConfigWarning", "PathLike", "PreprocessConfig",
    "TrainConfig", "canonical_label_type", "format_config", "format_ids", "format_int_list",
    "label_diameters_if_needed", "load_config", "load_preprocess_config", "load_train_config",
    "parse_ids", "parse_int_list", "read_config_dict", "save_config", "suggested_label_diameters",
    "warning_line",
    "written_by_save_config",
]
