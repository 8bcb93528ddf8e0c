"""The channel weights of squeeze-and-excitation blocks, as bar charts.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", 2017, arXiv:1709.01507,
section 6.4 plots the excitation of each channel for images of different
classes: early blocks weigh channels alike for every class, late blocks
become class-specific, and the very last ones saturate near 1. This draws the
same bars for one image: the sigmoid gate of every channel of the chosen block.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from cnnzoo.analysis.figures import save_figure
from cnnzoo.analysis.gradcam import find_layer
from cnnzoo.errors import CnnzooError
from cnnzoo.measure.modes import evaluating
from cnnzoo.models.layers.squeeze_excite import SqueezeExcite


def se_blocks(model: nn.Module) -> list[str]:
    """Qualified names of every squeeze-and-excitation block, in definition order."""
    return [name for name, module in model.named_modules() if isinstance(module, SqueezeExcite)]


def resolve_se_block(model: nn.Module, layer: str | None) -> str:
    """The SE block named ``layer``, the one inside the block named ``layer``, or the last."""
    blocks = se_blocks(model)
    if not blocks:
        raise CnnzooError(
            "this network has no squeeze-and-excitation blocks; try se_resnet50, "
            "efficientnet_b0 or mobilenet_v3_large"
        )
    if layer is None:
        return blocks[-1]
    find_layer(model, layer)
    inside = [b for b in blocks if b == layer or b.startswith(layer + ".")]
    if not inside:
        raise CnnzooError(
            f"{layer!r} holds no squeeze-and-excitation block; SE blocks: "
            f"{', '.join(blocks[:4])}{', ...' if len(blocks) > 4 else ''}"
        )
    return inside[0]


def se_channel_weights(model: nn.Module, image: Tensor, block: str) -> Tensor:
    """The excitation (C,) -- each channel's gate in (0, 1) -- of ``block`` for ``image``."""
    module = find_layer(model, block)
    if not isinstance(module, SqueezeExcite):
        raise CnnzooError(f"{block!r} is a {type(module).__name__}, not a SqueezeExcite block")
    captured: list[Tensor] = []
    handle = module.gate.register_forward_hook(
        lambda gate, inputs, output: captured.append(output.detach())
    )
    try:
        with torch.no_grad(), evaluating(model):
            model(image)
    finally:
        handle.remove()
    if not captured:
        raise CnnzooError(f"the forward pass did not run {block!r}")
    return captured[-1][0].flatten().float()


def save_se_weights(weights: Tensor, path: Path, title: str) -> Path:
    """A bar per channel: its SE weight."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), dpi=100)
    axes = figure.subplots()
    axes.bar(range(len(weights)), weights.numpy(), width=1.0, color="tab:blue")
    axes.set_xlim(-0.5, len(weights) - 0.5)
    axes.set_ylim(0, 1)
    axes.set_xlabel("channel")
    axes.set_ylabel("excitation (gate)")
    axes.set_title(title, fontsize=10)
    return save_figure(figure, path)
