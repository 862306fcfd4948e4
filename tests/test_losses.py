"""Losses: values on hand-checkable inputs, ordering, gradients, names."""

import math

import pytest
import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.train.losses import (
    LOSSES,
    class_term,
    dice_loss,
    focal_loss,
    get_loss,
    iou_loss,
    mse_loss,
)

BIG = 30.0  # a logit whose sigmoid is 1 to float precision


def _binary_case():
    target = torch.zeros(2, 1, 4, 4, 4)
    target[:, :, 1:3, 1:3, 1:3] = 1.0
    return target


def test_perfect_prediction_scores_zero_and_inverse_scores_high():
    target = _binary_case()
    perfect = (target * 2 - 1) * BIG
    for name, fn in LOSSES.items():
        assert float(fn(perfect, target)) == pytest.approx(0.0, abs=1e-6), name
        assert float(fn(-perfect, target)) > 0.2, name


def test_dice_value_by_hand():
    # scores 0.5 everywhere: |P.T| = 0.5 * 16, |P| = 0.5 * 128, |T| = 16
    target = _binary_case()
    logits = torch.zeros_like(target)
    expected = 1 - (2 * 8 + 1) / (64 + 16 + 1)
    assert float(dice_loss(logits, target)) == pytest.approx(expected, rel=1e-6)
    # IoU by hand: (8 + 1) / (64 + 16 - 8 + 1)
    assert float(iou_loss(logits, target)) == pytest.approx(1 - 9 / 73, rel=1e-6)
    assert float(mse_loss(logits, target)) == pytest.approx(0.25, rel=1e-6)
    # focal with p = 0.5 everywhere: 0.25 * ln 2
    assert float(focal_loss(logits, target)) == pytest.approx(0.25 * math.log(2), rel=1e-6)


def test_multiclass_uses_softmax_over_background_and_classes():
    labels = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    labels[0, :2] = 1
    labels[0, 3, 3] = 2
    target = torch.nn.functional.one_hot(labels, 3).permute(0, 4, 1, 2, 3).float()
    perfect = target * BIG
    for name, fn in LOSSES.items():
        assert float(fn(perfect, target)) == pytest.approx(0.0, abs=1e-5), name
    uniform = torch.zeros_like(target)
    # softmax of equal logits gives 1/3 per channel: MSE = mean((1/3 - t)^2)
    expected = float(((1 / 3 - target) ** 2).mean())
    assert float(mse_loss(uniform, target)) == pytest.approx(expected, rel=1e-6)


def test_losses_decrease_as_prediction_improves_and_give_gradients():
    target = _binary_case()
    for name, fn in LOSSES.items():
        values = [float(fn((target * 2 - 1) * s, target)) for s in (0.0, 1.0, 3.0)]
        assert values[0] > values[1] > values[2], name
        logits = torch.zeros_like(target, requires_grad=True)
        fn(logits, target).backward()
        # gradient pushes particle voxels up and background voxels down
        assert float(logits.grad[target > 0].mean()) < 0 < float(logits.grad[target == 0].mean())


def test_half_precision_logits_give_float32_loss():
    target = _binary_case()
    loss = dice_loss(torch.zeros_like(target, dtype=torch.bfloat16), target)
    assert loss.dtype == torch.float32


def test_get_loss_by_name():
    assert get_loss("Dice") is dice_loss
    assert get_loss(" focal ") is focal_loss
    with pytest.raises(DeepETPickerError, match="'hinge'.*dice, mse, focal, iou"):
        get_loss("hinge")


def test_every_loss_the_config_accepts_has_a_function_and_a_label():
    from deepetpicker.config import LOSS_NAMES
    from deepetpicker.train.losses import LOSSES

    assert set(LOSSES) == set(LOSS_NAMES)
    assert all(label for label, _ in LOSS_NAMES.values())


def test_the_class_term_keeps_pulling_a_class_the_network_has_given_up():
    """A voxel labelled class 2 whose class-2 probability has fallen to about 1e-4: the Dice
    loss's gradient on that logit is about that small, the cross-entropy's about -1, so the
    class is pulled back up whatever its probability."""
    target = torch.zeros(1, 3, 4, 4, 4)
    target[:, 0] = 1.0
    target[:, 0, 1:3, 1:3, 1:3] = 0.0
    target[:, 2, 1:3, 1:3, 1:3] = 1.0                     # 8 voxels of class 2
    logits = torch.zeros(1, 3, 4, 4, 4)
    logits[:, 0] = 4.0                                    # background everywhere ...
    logits[:, 2] = -5.0                                   # ... class 2 nearly gone
    logits.requires_grad_(True)
    dice_grad, = torch.autograd.grad(dice_loss(logits, target), logits)
    ce_grad, = torch.autograd.grad(class_term(logits, target), logits)
    voxel = (0, 2, 1, 1, 1)
    assert abs(float(dice_grad[voxel])) < 1e-4
    assert float(ce_grad[voxel]) * 64 == pytest.approx(-1.0, abs=1e-3)   # mean over 64 voxels
    # it is the plain cross-entropy over background and classes; nothing for one class
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(logits, target.argmax(dim=1))
        assert float(class_term(logits, target)) == pytest.approx(float(expected))
    assert float(class_term(torch.zeros(1, 1, 4, 4, 4), target[:, :1])) == 0.0
