"""Losses: MSE on +-1 targets, Dice, cross-entropy options and SegNet's class weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.losses import build_loss, median_frequency_weights


def test_mse_targets_are_plus_one_for_the_class_and_minus_one_elsewhere() -> None:
    loss = build_loss("mse")
    target = torch.tensor([2, 0])
    perfect = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, -1.0]])
    assert loss(perfect, target).item() == 0.0
    assert loss(torch.zeros(2, 3), target).item() == pytest.approx(1.0)


def test_mse_and_dice_skip_void_pixels() -> None:
    target = torch.tensor([[[0, 255]]])
    scores = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # right on pixel 0, wrong on void
    assert build_loss("mse", ignore_index=255)(scores.tanh(), target).item() < 1e-6
    assert build_loss("dice", ignore_index=255)(scores, target).item() < 0.01


def test_dice_is_small_for_a_confident_right_mask_and_large_for_a_wrong_one() -> None:
    target = torch.tensor([[[0, 1], [1, 0]]])
    right = F.one_hot(target, 2).movedim(-1, 1).float() * 20
    dice = build_loss("dice")
    assert dice(right, target).item() < 0.2
    assert dice(-right, target).item() > 0.7


def test_cross_entropy_passes_smoothing_weights_and_void_label() -> None:
    scores, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 255])
    weights = torch.tensor([1.0, 2.0, 3.0])
    ours = build_loss("ce", class_weights=weights, ignore_index=255, label_smoothing=0.1)
    reference = F.cross_entropy(
        scores, target, weight=weights, ignore_index=255, label_smoothing=0.1
    )
    assert ours(scores, target).item() == pytest.approx(reference.item())
    with pytest.raises(CnnzooError, match="apply to --loss ce"):
        build_loss("mse", label_smoothing=0.1)


def test_median_frequency_weights_follow_segnet() -> None:
    # Image 1: 3 pixels of class 0, 1 of class 1. Image 2: 4 pixels of class 0.
    masks = [torch.tensor([[0, 0], [0, 1]]), torch.zeros(2, 2, dtype=torch.long)]
    weights = median_frequency_weights(masks, num_classes=3)
    frequency = torch.tensor([7 / 8, 1 / 4])  # class 1 counted over image 1 only
    median = frequency.quantile(0.5)
    assert weights[:2].tolist() == pytest.approx((median / frequency).tolist())
    assert weights[2] == 0.0  # never seen


def test_border_loss_weighs_the_gap_between_touching_objects_most() -> None:
    # Two cells (class 1) separated by a one-pixel membrane column (class 0).
    target = torch.ones(1, 9, 9, dtype=torch.long)
    target[0, :, 4] = 0
    border = build_loss("border")
    wrong_in_gap, wrong_in_cell = torch.zeros(1, 2, 9, 9), torch.zeros(1, 2, 9, 9)
    wrong_in_gap[0, 1, 4, 4] = 10.0  # scores "cell" on one gap pixel
    wrong_in_cell[0, 0, 4, 1] = 10.0  # scores "membrane" on one cell pixel
    baseline = border(torch.zeros(1, 2, 9, 9), target)
    # Class balance alone weighs the gap 8x a cell pixel here (72 vs 9 pixels); the border
    # term adds w0 * exp(-(1 + 1)^2 / 2 sigma^2) = 9.2 on top of the gap's 4.5.
    ratio = (border(wrong_in_gap, target) - baseline) / (border(wrong_in_cell, target) - baseline)
    assert 20 < ratio < 30
    with pytest.raises(CnnzooError, match="segmentation masks"):
        border(torch.zeros(2, 3), torch.tensor([0, 1]))
