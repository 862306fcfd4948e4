"""The 3D residual U-Net of DeepETPicker.

Four resolution levels (by default; one per entry of ``f_maps``). Each level runs one
residual block: three 3x3x3 convolution + batch-norm + ReLU units, the output of the first
added to the output of the third, then an ELU. The encoder halves the resolution with average
pooling; the decoder doubles it with a transposed convolution whose output is added to the
encoder features of the same level.

Two inputs help a small network on noisy tomograms:

* CoordConv: three channels holding the x, y and z position in [-1, 1] are appended to the
  input of every block, so filters can tell the centre of a patch from its border.
* Image pyramid: the input patch average-pooled by 2, 4, 8 is appended to the input of
  encoder levels 1, 2, 3, so deep levels see the raw densities as well as features.

Both can be switched off for ablations. The network returns logits; :func:`probabilities`
turns them into per-class scores in [0, 1] (sigmoid for one class, softmax over background +
K classes with the background channel dropped for K classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from deepetpicker.config import NETWORK_PRESETS
from deepetpicker.errors import DeepETPickerError

DEFAULT_F_MAPS = NETWORK_PRESETS["default"]
LIGHT_F_MAPS = NETWORK_PRESETS["light"]


def append_coordinates(x: torch.Tensor) -> torch.Tensor:
    """Append x, y, z coordinate channels in [-1, 1] to a ``(B, C, D, H, W)`` tensor.

    The channels come in the order x (varies along W), y (along H), z (along D).
    """
    b, _, d, h, w = x.shape
    axes = [torch.linspace(-1.0, 1.0, n, device=x.device, dtype=x.dtype) for n in (d, h, w)]
    zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
    coords = torch.stack((xx, yy, zz)).unsqueeze(0).expand(b, -1, -1, -1, -1)
    return torch.cat((x, coords), dim=1)


class ConvUnit(nn.Module):
    """3x3x3 convolution, batch normalisation, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)

    def fuse(self) -> None:
        """Fold the batch normalisation into the convolution (inference only: same output,
        one tensor less per unit)."""
        if isinstance(self.bn, nn.BatchNorm3d):
            self.conv = fuse_conv_bn_eval(self.conv.eval(), self.bn.eval())
            self.bn = nn.Identity()


class ResidualBlock(nn.Module):
    """Three conv units; the first unit's output is added to the third's, then ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = ConvUnit(in_channels, out_channels)
        self.conv2 = ConvUnit(out_channels, out_channels)
        self.conv3 = ConvUnit(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.conv1(x)
        return F.elu(self.conv3(self.conv2(first)) + first)


class EncoderLevel(nn.Module):
    """Optional 2x average pooling, then [features | pyramid image | coordinates] -> block."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool,
                 pyramid_channels: int, coord_conv: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.coord_conv = coord_conv
        block_in = in_channels + pyramid_channels + (3 if coord_conv else 0)
        self.block = ResidualBlock(block_in, out_channels)

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        if self.downsample:
            x = F.avg_pool3d(x, 2)
        if image is not None:
            x = torch.cat((x, image), dim=1)
        if self.coord_conv:
            x = append_coordinates(x)
        return self.block(x)


class DecoderLevel(nn.Module):
    """Transposed-conv up-sampling added to the skip features, then [.. | coordinates] -> block."""

    def __init__(self, in_channels: int, out_channels: int, coord_conv: bool) -> None:
        super().__init__()
        self.coord_conv = coord_conv
        self.up = nn.ConvTranspose3d(in_channels, out_channels, kernel_size=3, stride=2,
                                     padding=1)
        self.block = ResidualBlock(out_channels + (3 if coord_conv else 0), out_channels)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = self.up(x, output_size=skip.shape[2:]) + skip
        if self.coord_conv:
            x = append_coordinates(x)
        return self.block(x)


class ResUNet3D(nn.Module):
    """3D residual U-Net returning logits ``(B, C, D, H, W)``.

    ``C`` is 1 for one class (sigmoid) and ``num_classes + 1`` for several classes (softmax
    over background and classes). Spatial edges must be multiples of ``2 ** (levels - 1)``
    (8 for the usual four levels).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 1,
                 f_maps: Sequence[int] = DEFAULT_F_MAPS, coord_conv: bool = True,
                 pyramid: bool = True) -> None:
        super().__init__()
        f_maps = tuple(int(f) for f in f_maps)
        if len(f_maps) < 2 or min(f_maps) < 1:
            raise DeepETPickerError(
                f"f_maps {list(f_maps)} is not a valid list of channel counts: give at least "
                f"two positive integers, e.g. [24, 48, 72, 108] or the light [8, 16, 24, 36].")
        if int(num_classes) < 1:
            raise DeepETPickerError(
                f"num_cls {num_classes} is not valid: the network needs at least one class.")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.f_maps = f_maps
        self.coord_conv = bool(coord_conv)
        self.pyramid = bool(pyramid)
        self.out_channels = 1 if self.num_classes == 1 else self.num_classes + 1

        levels = []
        for i, width in enumerate(f_maps):
            previous = self.in_channels if i == 0 else f_maps[i - 1]
            image_channels = self.in_channels if (self.pyramid and i > 0) else 0
            levels.append(EncoderLevel(previous, width, downsample=i > 0,
                                       pyramid_channels=image_channels,
                                       coord_conv=self.coord_conv))
        self.encoders = nn.ModuleList(levels)
        widths = list(reversed(f_maps))
        self.decoders = nn.ModuleList(
            DecoderLevel(widths[i], widths[i + 1], self.coord_conv) for i in range(len(widths) - 1))
        self.head = nn.Conv3d(f_maps[0], self.out_channels, kernel_size=1)
        self.channels_last = False

    def to_device(self, device: str | torch.device) -> "ResUNet3D":
        """Move the network to ``device`` in the memory layout that runs fastest there.

        On the CPU, weights and activations are kept channels-last (NDHWC): oneDNN's 3D
        convolutions run about 1.3x faster forward and 1.5x faster backward in that layout
        (without it, their backward pass can fall onto a path tens of times slower).
        Elsewhere the usual layout is kept.
        """
        device = torch.device(device)
        self.channels_last = device.type == "cpu"
        layout = torch.channels_last_3d if self.channels_last else torch.contiguous_format
        return self.to(device=device, memory_format=layout)

    @property
    def size_multiple(self) -> int:
        """Patch edges must be multiples of this number."""
        return 2 ** (len(self.f_maps) - 1)

    def fuse_for_inference(self) -> "ResUNet3D":
        """Fold every batch normalisation into its convolution and switch to eval mode: the
        same scores with less memory and time per tile. The network cannot train afterwards."""
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvUnit):
                module.fuse()
        return self

    def model_args(self) -> dict:
        """The constructor arguments, to rebuild the same network from a checkpoint."""
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "f_maps": list(self.f_maps), "coord_conv": self.coord_conv,
                "pyramid": self.pyramid}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise DeepETPickerError(
                f"The network expects a batch of shape (B, {self.in_channels}, D, H, W); got "
                f"{tuple(x.shape)}.")
        check_patch_size(tuple(x.shape[2:]), self.size_multiple)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        images = []
        if self.pyramid:
            image = x
            for _ in range(len(self.encoders) - 1):
                image = F.avg_pool3d(image, 2)
                images.append(image)
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x, images[i - 1] if (self.pyramid and i > 0) else None)
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            x = decoder(skip, x)
        return self.head(x)


def check_patch_size(shape: Sequence[int], multiple: int = 8) -> None:
    """Raise :class:`DeepETPickerError` unless every edge is a positive multiple of ``multiple``."""
    bad = [int(s) for s in shape if int(s) <= 0 or int(s) % multiple]
    if bad:
        lower = max(multiple, (bad[0] // multiple) * multiple)
        raise DeepETPickerError(
            f"Patch size {list(int(s) for s in shape)} is not usable: every edge must be a "
            f"multiple of {multiple} (the network halves the patch {multiple.bit_length() - 1} "
            f"times). Use e.g. {lower} or {lower + multiple}.")


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class scores in [0, 1], shape ``(B, K, D, H, W)``, from logits ``(B, C, D, H, W)``.

    One output channel: sigmoid. Several: softmax over background + classes, then the
    background channel (0) is dropped so channel ``k - 1`` holds class ``k``.
    """
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)[:, 1:]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
