"""The feature maps of one layer, as a grid of images.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
ECCV 2014, arXiv:1311.2901, showed that early layers respond to edges and
colour blobs and later ones to textures, parts and objects. Looking at a
layer's maps for one image is the simplest way to see this: each channel is
drawn as a grey image, scaled to its own range, the most active channels
first.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnzoo.analysis.figures import save_figure
from cnnzoo.analysis.gradcam import find_layer
from cnnzoo.analysis.receptive_field import main_tensor
from cnnzoo.errors import CnnzooError
from cnnzoo.measure.modes import evaluating


def feature_maps(model: nn.Module, image: Tensor, layer: str) -> Tensor:
    """The output (C, h, w) of ``layer`` for ``image`` (1, C, H, W)."""
    target = find_layer(model, layer)
    captured: list[Tensor] = []
    handle = target.register_forward_hook(
        lambda module, inputs, output: captured.append(main_tensor(output))
    )
    try:
        with torch.no_grad(), evaluating(model):
            model(image)
    finally:
        handle.remove()
    maps = captured[-1] if captured else None
    if maps is None or maps.dim() != 4:
        raise CnnzooError(
            f"layer {layer!r} does not produce feature maps (N, C, H, W); choose a "
            "convolutional layer (see `cnnzoo info MODEL`)"
        )
    return maps[0].float()


def most_active(maps: Tensor, count: int) -> list[int]:
    """Indices of the ``count`` channels with the largest mean absolute activation."""
    energy = maps.abs().flatten(1).mean(1)
    return energy.argsort(descending=True)[:count].tolist()


def save_feature_grid(maps: Tensor, path: Path, title: str, limit: int = 64) -> Path:
    """Up to ``limit`` channels of ``maps`` (C, h, w) in a square grid, most active first."""
    from matplotlib.figure import Figure

    channels = most_active(maps, min(limit, maps.shape[0]))
    columns = math.ceil(math.sqrt(len(channels)))
    rows = math.ceil(len(channels) / columns)
    figure = Figure(figsize=(1.3 * columns + 0.4, 1.3 * rows + 0.7), dpi=100)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, channel in zip(axes.flat, channels):
        axis.imshow(maps[channel].numpy(), cmap="viridis")
        axis.set_title(str(channel), fontsize=7)
    figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)
