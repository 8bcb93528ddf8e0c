"""Metrics for both tasks from one confusion matrix.

A classifier's prediction per image and a segmenter's prediction per pixel are
the same thing to a confusion matrix: :class:`ConfusionMatrix` counts
(target, prediction) pairs with one ``torch.bincount`` per batch, skipping the
void label. Every metric the papers report follows from the matrix:

* top-1 accuracy (classification; top-5 is counted from the scores directly);
* pixel accuracy, mean class accuracy, per-class IoU, mean IoU and
  frequency-weighted IoU, as defined by Long et al. 2015 (FCN, sec. 5,
  arXiv:1411.4038) and reported by SegNet and DeepLab.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cnnzoo.tasks import get_task


class ConfusionMatrix:
    """``matrix[t, p]`` counts samples (images or pixels) of class ``t`` predicted as ``p``."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Count a batch of predicted labels against targets of the same shape."""
        prediction = prediction.reshape(-1).to("cpu", torch.int64)
        target = target.reshape(-1).to("cpu", torch.int64)
        keep = (target >= 0) & (target < self.num_classes)
        if self.ignore_index is not None:
            keep &= target != self.ignore_index
        pairs = target[keep] * self.num_classes + prediction[keep]
        counts = torch.bincount(pairs, minlength=self.num_classes**2)
        self.matrix += counts.reshape(self.num_classes, self.num_classes)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    def accuracy(self) -> float:
        """Fraction of samples whose prediction is right (top-1, or pixel accuracy)."""
        return _ratio(self.matrix.diagonal().sum(), self.matrix.sum())

    def class_accuracy(self) -> Tensor:
        """Recall of every class; NaN for classes absent from the targets."""
        return self.matrix.diagonal().double() / self.matrix.sum(1).double()

    def mean_class_accuracy(self) -> float:
        return _nanmean(self.class_accuracy())

    def iou(self) -> Tensor:
        """Intersection over union of every class; NaN where a class is in neither."""
        true_positive = self.matrix.diagonal().double()
        union = self.matrix.sum(0).double() + self.matrix.sum(1).double() - true_positive
        return true_positive / union

    def mean_iou(self) -> float:
        return _nanmean(self.iou())

    def frequency_weighted_iou(self) -> float:
        """IoU of each class weighted by its share of the target pixels (Long et al. 2015)."""
        frequency = self.matrix.sum(1).double() / max(self.total, 1)
        iou = self.iou()
        present = frequency > 0
        return float((frequency[present] * iou[present].nan_to_num(0.0)).sum())


class MetricTracker:
    """Accumulates loss, confusion matrix and (for classification) top-5 over batches."""

    def __init__(self, task: str, num_classes: int, ignore_index: int | None = None) -> None:
        self.task = task
        self.confusion = ConfusionMatrix(num_classes, ignore_index)
        self.loss_sum = 0.0
        self.samples = 0
        self.top5_correct = 0
        self.track_top5 = task == "classification" and num_classes >= 5

    def update(self, scores: Tensor, target: Tensor, loss: float | None = None) -> None:
        """Add one batch: ``scores`` (N, K) or (N, K, H, W), ``target`` (N,) or (N, H, W)."""
        batch = target.shape[0]
        if loss is not None:
            self.loss_sum += loss * batch
            self.samples += batch
        self.confusion.update(scores.argmax(1), target)
        if self.track_top5:
            top5 = scores.topk(5, dim=1).indices
            self.top5_correct += int((top5 == target[:, None]).any(1).sum())

    @property
    def loss(self) -> float:
        return self.loss_sum / self.samples if self.samples else math.nan

    @property
    def headline(self) -> float:
        """The number that picks the best checkpoint: the task's headline (top-1, mean IoU)."""
        value = self.summary()[get_task(self.task).headline]
        return math.nan if value is None else float(value)

    def summary(self) -> dict[str, float | list[float | None]]:
        """The metrics a run reports, with NaN written as ``None`` so the JSON stays valid."""
        if self.task == "classification":
            result: dict[str, float | list[float | None]] = {"top1": self.confusion.accuracy()}
            if self.track_top5:
                result["top5"] = self.top5_correct / max(self.confusion.total, 1)
        else:
            result = {
                "miou": self.confusion.mean_iou(),
                "pixel_acc": self.confusion.accuracy(),
                "mean_class_acc": self.confusion.mean_class_accuracy(),
                "fwiou": self.confusion.frequency_weighted_iou(),
                "iou_per_class": [_finite_or_none(v) for v in self.confusion.iou().tolist()],
            }
        result["loss"] = self.loss
        return {k: _finite_or_none(v) if isinstance(v, float) else v for k, v in result.items()}


def _ratio(numerator: Tensor, denominator: Tensor) -> float:
    return float(numerator) / float(denominator) if int(denominator) else math.nan


def _nanmean(values: Tensor) -> float:
    present = values[~values.isnan()]
    return float(present.mean()) if present.numel() else math.nan


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
