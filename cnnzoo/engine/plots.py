"""Figures a run leaves behind: training curves and the confusion matrix (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, works on servers
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, Any]], path: Path, headline: str) -> None:
    """Loss and ``headline`` metric (top1 or miou) per epoch, training against validation."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_axis.plot(epochs, [row.get(key) for row in history], marker=".", label=label)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss")
    train_key = "train_top1" if headline == "top1" else "train_pixel_acc"
    metric_axis.plot(epochs, [row.get(train_key) for row in history], marker=".", label="train")
    metric_axis.plot(
        epochs, [row.get(f"val_{headline}") for row in history], marker=".", label="validation"
    )
    metric_axis.set(xlabel="epoch", ylabel=headline, title=headline)
    for axis in (loss_axis, metric_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(matrix: torch.Tensor, class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (each true class sums to 1), counts written if small."""
    plt = _pyplot()
    counts = matrix.double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    classes = len(class_names)
    side = min(4 + 0.35 * classes, 16)
    figure, axis = plt.subplots(figsize=(side, side))
    image = axis.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    if classes <= 30:
        axis.set_xticks(range(classes), class_names, rotation=90)
        axis.set_yticks(range(classes), class_names)
    if classes <= 12:
        for row in range(classes):
            for col in range(classes):
                colour = "white" if rates[row, col] > 0.5 else "black"
                axis.text(col, row, int(counts[row, col]), ha="center", va="center", color=colour)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
