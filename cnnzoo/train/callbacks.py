"""Hooks into the training loop, and the one the engine ships: gradient norms per layer.

A :class:`Callback` sees the run start, each step right after the backward
pass, each finished epoch and the run's end. The trainer runs callbacks in
the main process only.

:class:`GradNormRecorder` records the L2 norm of every convolution and fully
connected weight's gradient every N steps (``--log-grad-norms N``). He et
al., "Deep Residual Learning for Image Recognition", 2015, arXiv:1512.03385,
explain the degradation of deep *plain* networks by a signal that fades on
its way through many layers; recorded layer by layer, a plain network's
gradient norms fall by orders of magnitude towards the input while a
residual network's stay level. Recording belongs to training, so it lives
here; :mod:`cnnzoo.analysis.gradient_flow` reads and discusses what it writes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from cnnzoo.train.trainer import Trainer

# Layers whose weight gradient is recorded: every convolution and fully connected layer.
PARAMETERISED_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


class Callback:
    """Hooks into the loop; override the ones you need (run by the main process only)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """After the model, data and optimiser exist, before the first step."""

    def on_after_backward(self, step: int, model: nn.Module) -> None:
        """After ``loss.backward()``, before gradient clipping and the optimiser step."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """After validation and checkpointing; set ``trainer.stop_requested`` to stop."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After training, when the run directory is complete."""


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
        # A Figure of its own leaves the plotting backend of a user's session alone.
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7, 4), dpi=100)
        axes = figure.subplots()
        colors = colormaps["viridis"](
            [i / max(1, len(self.records) - 1) for i in range(len(self.records))]
        )
        for (step, norms), color in zip(self.records, colors):
            axes.plot(range(len(norms)), norms, color=color, marker=".", label=f"step {step}")
        if self.records:
            axes.set_yscale("log")
        axes.set_xlabel("layer depth (0 = input side)")
        axes.set_ylabel("gradient L2 norm")
        axes.set_title("Gradient norm of each conv/linear weight")
        if 0 < len(self.records) <= 12:
            axes.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(path)


class GradientNormLogger(Callback):
    """``--log-grad-norms N``: a :class:`GradNormRecorder` over the run, saved in its directory.

    With ``save=False`` the records stay in :attr:`recorder` only, for a
    caller that analyses them in memory (an experiment comparing runs).
    """

    def __init__(self, every: int, *, save: bool = True) -> None:
        self.every = every
        self.save = save
        self.recorder: GradNormRecorder | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        self.recorder = GradNormRecorder(trainer.model, self.every)

    def on_after_backward(self, step: int, model: nn.Module) -> None:
        if self.recorder is not None:
            self.recorder.after_backward(step)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.save and self.recorder is not None:
            self.recorder.save(trainer.run_dir)
