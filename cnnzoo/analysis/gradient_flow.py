"""Gradient norms per layer during training: vanishing gradients made visible.

He et al., "Deep Residual Learning for Image Recognition", 2015, arXiv:1512.03385,
explain that a deep *plain* network trains worse than a shallower one (the
degradation problem) and that shortcut connections let the signal -- and its
gradient -- pass through many layers unchanged. Recording the L2 norm of the
gradient of every convolution and fully connected weight, layer by layer, shows
this directly: plotted against depth, a plain network's norms fall by orders of
magnitude towards the input while a residual network's stay level
(``cnnzoo train plain56 --log-grad-norms`` against ``resnet56``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import nn

# Layers whose weight gradient is recorded: every convolution and fully connected layer.
PARAMETERISED_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def parameterised_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of every conv/linear layer with a weight, in definition order."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, PARAMETERISED_LAYERS)
        and isinstance(getattr(module, "weight", None), torch.Tensor)
    ]


class GradNormRecorder:
    """Records the gradient L2 norm of each conv/linear weight every ``every`` steps.

    Call :meth:`after_backward` after ``loss.backward()`` (before the optimiser
    clears the gradients) and :meth:`save` at the end of training; the records
    land in ``grad_norms.csv`` and ``grad_norms.png`` (norm against layer depth,
    one line per recorded step, logarithmic norm axis).

    Depth is the layer's position among the recorded layers in definition
    order, which follows the data flow in every cnnzoo network (input side = 0).
    """

    def __init__(self, model: nn.Module, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.every = every
        self.layers = parameterised_layers(model)
        # One row per recorded step: (step, [norm of each layer, in depth order]).
        self.records: list[tuple[int, list[float]]] = []

    def after_backward(self, step: int) -> None:
        """Record the current gradient norms when ``step`` is a multiple of ``every``."""
        if step % self.every != 0:
            return
        norms = []
        for _, layer in self.layers:
            grad = layer.weight.grad
            norms.append(float("nan") if grad is None else grad.detach().float().norm().item())
        self.records.append((step, norms))

    def save(self, run_dir: Path) -> None:
        """Write ``grad_norms.csv`` (step, depth, layer, grad_norm) and ``grad_norms.png``."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "grad_norms.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "depth", "layer", "grad_norm"])
            for step, norms in self.records:
                for depth, ((name, _), norm) in enumerate(zip(self.layers, norms)):
                    writer.writerow([step, depth, name, f"{norm:.6g}"])
        self._plot(run_dir / "grad_norms.png")

    def _plot(self, path: Path) -> None:
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        from cnnzoo.analysis.figures import save_figure

        figure = Figure(figsize=(7, 4), dpi=100)
        axes = figure.subplots()
        colours = colormaps["viridis"](
            [i / max(1, len(self.records) - 1) for i in range(len(self.records))]
        )
        for (step, norms), colour in zip(self.records, colours):
            axes.plot(range(len(norms)), norms, color=colour, marker=".", label=f"step {step}")
        if self.records:
            axes.set_yscale("log")
        axes.set_xlabel("layer depth (0 = input side)")
        axes.set_ylabel("gradient L2 norm")
        axes.set_title("Gradient norm of each conv/linear weight")
        if 0 < len(self.records) <= 12:
            axes.legend(fontsize="small")
        save_figure(figure, path)
