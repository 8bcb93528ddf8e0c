"""Figures a run leaves behind: training curves and the confusion matrix.

Each is drawn on a :class:`matplotlib.figure.Figure` of its own, never through
``pyplot``, so training inside a notebook leaves the notebook's plotting backend
and figure list as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _new_figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def plot_curves(history: list[dict[str, Any]], path: Path, headline: str) -> None:
    """Loss and ``headline`` metric (top1 or miou) per epoch, training against validation.

    A run without validation (``--val-fraction 0``) draws the training curves alone.
    """
    epochs = [row["epoch"] for row in history]
    figure = _new_figure((10, 4))
    loss_axis, metric_axis = figure.subplots(1, 2)
    train_key = "train_top1" if headline == "top1" else "train_pixel_acc"
    series = (
        (loss_axis, "train_loss", "train"),
        (loss_axis, "val_loss", "validation"),
        (metric_axis, train_key, "train"),
        (metric_axis, f"val_{headline}", "validation"),
    )
    for axis, key, label in series:
        values = [row.get(key) for row in history]
        if any(value is not None for value in values):
            axis.plot(epochs, values, marker=".", label=label)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss")
    metric_axis.set(xlabel="epoch", ylabel=headline, title=headline)
    for axis in (loss_axis, metric_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    _save(figure, path)


def plot_confusion(matrix: torch.Tensor, class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (each true class sums to 1), counts written if small."""
    counts = matrix.double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    classes = len(class_names)
    side = min(4 + 0.35 * classes, 16)
    figure = _new_figure((side, side))
    axis = figure.subplots()
    image = axis.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    if classes <= 30:
        axis.set_xticks(range(classes), class_names, rotation=90)
        axis.set_yticks(range(classes), class_names)
    if classes <= 12:
        for row in range(classes):
            for col in range(classes):
                color = "white" if rates[row, col] > 0.5 else "black"
                axis.text(col, row, int(counts[row, col]), ha="center", va="center", color=color)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    _save(figure, path)
