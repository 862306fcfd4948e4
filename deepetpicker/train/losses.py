"""Segmentation losses, chosen by name: ``dice`` (default), ``mse``, ``focal``, ``iou``.

Each loss takes the network's logits ``(B, C, D, H, W)`` and the target of the same shape
(one foreground channel for one class, one-hot background + K classes otherwise) and returns
a scalar. Scores are taken with a sigmoid for one channel and a softmax over channels
otherwise, as at inference. Losses are computed in float32, also under mixed precision.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

from deepetpicker.errors import DeepETPickerError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _scores(logits: torch.Tensor) -> torch.Tensor:
    logits = logits.float()
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def _per_channel(x: torch.Tensor) -> torch.Tensor:
    """(B, C, ...) -> (C, B * ...)."""
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean over channels of (2 |P.T| + s) / (|P| + |T| + s), sums over the whole batch."""
    p, t = _per_channel(_scores(logits)), _per_channel(target.float())
    inter = (p * t).sum(dim=1)
    dice = (2.0 * inter + smooth) / (p.sum(dim=1) + t.sum(dim=1) + smooth)
    return 1.0 - dice.mean()


def iou_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean over channels of the soft Jaccard index (|P.T| + s) / (|P| + |T| - |P.T| + s)."""
    p, t = _per_channel(_scores(logits)), _per_channel(target.float())
    inter = (p * t).sum(dim=1)
    union = p.sum(dim=1) + t.sum(dim=1) - inter
    return 1.0 - ((inter + smooth) / (union + smooth)).mean()


def mse_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between scores and target."""
    return F.mse_loss(_scores(logits), target.float())


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): cross-entropy weighted by ``(1 - p_true) ** gamma``.

    Binary (sigmoid) for one channel, categorical (softmax) for several; mean over voxels.
    """
    logits, target = logits.float(), target.float()
    if logits.shape[1] == 1:
        ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p = torch.sigmoid(logits)
        p_true = p * target + (1.0 - p) * (1.0 - target)
        return ((1.0 - p_true) ** gamma * ce).mean()
    log_p = torch.log_softmax(logits, dim=1)
    log_p_true = (log_p * target).sum(dim=1)
    return (-(1.0 - log_p_true.exp()) ** gamma * log_p_true).mean()


def class_term(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over background and classes on every voxel of the patch, added to the
    segmentation loss when there are several classes (Dice + cross-entropy, as nnU-Net).

    Under a softmax the Dice loss's gradient on a class channel shrinks with that channel's
    probability: a kind that the network starts to call background, or another kind, early in
    training (a small or faint particle, or one like a more frequent kind) then gets almost no
    signal and is never learned. The cross-entropy's gradient on a labelled voxel is ``p - 1``
    whatever the probability, so every such voxel keeps pulling its own class up. 0 for one
    class (sigmoid output)."""
    if logits.shape[1] < 2:
        return logits.new_zeros((), dtype=torch.float32)
    return F.cross_entropy(logits.float(), target.float().argmax(dim=1))


LOSSES: dict[str, LossFn] = {"dice": dice_loss, "mse": mse_loss, "focal": focal_loss,
                             "iou": iou_loss}


def get_loss(name: str) -> LossFn:
    """The loss function called ``name`` (case-insensitive): dice, mse, focal or iou."""
    key = str(name).strip().lower()
    if key not in LOSSES:
        raise DeepETPickerError(
            f"loss = {name!r} is not known; choose one of {', '.join(LOSSES)} (dice is the "
            f"default).")
    return LOSSES[key]
