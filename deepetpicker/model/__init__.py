"""The 3D residual U-Net and its checkpoints."""

from deepetpicker.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from deepetpicker.model.resunet import (
    DEFAULT_F_MAPS,
    LIGHT_F_MAPS,
    ResUNet3D,
    check_patch_size,
    count_parameters,
    probabilities,
)

__all__ = ["ResUNet3D", "probabilities", "load_checkpoint", "save_checkpoint", "read_checkpoint",
           "check_patch_size", "count_parameters", "DEFAULT_F_MAPS", "LIGHT_F_MAPS"]
