"""Confusion-matrix metrics for classification and segmentation, checked by hand counts."""

from __future__ import annotations

import math

import pytest
import torch

from cnnzoo.evaluation.metrics import ConfusionMatrix, MetricTracker


def test_confusion_counts_target_prediction_pairs_and_skips_void() -> None:
    matrix = ConfusionMatrix(3, ignore_index=255)
    target = torch.tensor([0, 0, 1, 2, 2, 255])
    prediction = torch.tensor([0, 1, 1, 2, 0, 1])
    matrix.update(prediction, target)
    assert matrix.matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert matrix.accuracy() == pytest.approx(3 / 5)


def test_segmentation_metrics_follow_long_et_al_definitions() -> None:
    # 2x4 mask: class 0 has 4 pixels (3 right), class 1 has 4 pixels (2 right).
    target = torch.tensor([[[0, 0, 0, 0], [1, 1, 1, 1]]])
    prediction = torch.tensor([[[0, 0, 0, 1], [1, 1, 0, 0]]])
    matrix = ConfusionMatrix(3)
    matrix.update(prediction, target)
    iou = matrix.iou()
    assert iou[0].item() == pytest.approx(3 / 6)  # TP 3, FP 2, FN 1
    assert iou[1].item() == pytest.approx(2 / 5)  # TP 2, FP 1, FN 2
    assert math.isnan(iou[2].item())  # in neither target nor prediction: left out of the mean
    assert matrix.mean_iou() == pytest.approx((0.5 + 0.4) / 2)
    assert matrix.mean_class_accuracy() == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert matrix.frequency_weighted_iou() == pytest.approx(0.5 * 0.5 + 0.5 * 0.4)
    assert matrix.accuracy() == pytest.approx(5 / 8)


def test_segmentation_summary_has_the_reported_keys_and_valid_json_values() -> None:
    tracker = MetricTracker("segmentation", num_classes=3, ignore_index=255)
    scores = torch.zeros(1, 3, 2, 2)
    scores[:, 1] = 1.0  # predicts class 1 everywhere
    tracker.update(scores, torch.tensor([[[1, 1], [0, 255]]]), loss=0.5)
    summary = tracker.summary()
    assert set(summary) == {"miou", "pixel_acc", "mean_class_acc", "fwiou", "iou_per_class", "loss"}
    assert summary["iou_per_class"][2] is None  # NaN becomes null in JSON
    assert summary["pixel_acc"] == pytest.approx(2 / 3)


def test_top5_is_reported_only_with_at_least_five_classes() -> None:
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    tracker = MetricTracker("classification", num_classes=6)
    tracker.update(scores, torch.tensor([4, 0]))  # ranks 5 (in the top 5) and 6 (not)
    assert tracker.summary()["top1"] == 0.0
    assert tracker.summary()["top5"] == pytest.approx(1 / 2)
    small = MetricTracker("classification", num_classes=4)
    small.update(torch.eye(4), torch.arange(4))
    assert "top5" not in small.summary() and small.summary()["top1"] == 1.0
