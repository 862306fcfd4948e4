"""The keys of the two config files, which of them are required, and the values they default
to or choose from: network presets, augmentation defaults, starting weights, file formats.
"""

from __future__ import annotations

import re

from deepetpicker.io.dataset import PICK_SUFFIXES, VOLUME_SUFFIXES

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

#: What ``device`` may name.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: The folders preprocessing fills, by the training keys that name them.
OUTPUT_PATH_KEYS = ("coord_path", "tomo_path", "label_path", "ocp_path")
