"""Gradient norms per layer during training: vanishing gradients made visible.

He et al., "Deep Residual Learning for Image Recognition", 2015, arXiv:1512.03385,
explain that a deep *plain* network trains worse than a shallower one (the
degradation problem) and that shortcut connections let the signal -- and its
gradient -- pass through many layers unchanged. Recording the L2 norm of the
gradient of every convolution and fully connected weight, layer by layer, shows
this directly: plotted against depth, a plain network's norms fall by orders of
magnitude towards the input while a residual network's stay level
(``cnnzoo train plain56 --log-grad-norms`` against ``resnet56``).

Recording is a training callback and lives in the training package
(:class:`~cnnzoo.train.callbacks.GradNormRecorder`, re-exported here); this
module reads back what a run recorded, so an analysis can compare runs.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cnnzoo.errors import CnnzooError
from cnnzoo.train.callbacks import GradNormRecorder, parameterised_layers

__all__ = ["GradNormRecorder", "parameterised_layers", "read_grad_norms"]


def read_grad_norms(run_dir: str | Path) -> tuple[list[str], list[tuple[int, list[float]]]]:
    """The layers and ``(step, norms)`` records a run's ``grad_norms.csv`` holds.

    The same shapes as :attr:`GradNormRecorder.layers` (names only) and
    :attr:`GradNormRecorder.records`, so a saved run and a recorder in memory
    are analysed alike.
    """
    path = Path(run_dir) / "grad_norms.csv"
    if not path.is_file():
        raise CnnzooError(f"{path} does not exist; train with --log-grad-norms N to record it")
    layers: dict[int, str] = {}
    norms_by_step: dict[int, dict[int, float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            depth = int(row["depth"])
            layers[depth] = row["layer"]
            norms_by_step.setdefault(int(row["step"]), {})[depth] = float(row["grad_norm"])
    records = [
        (step, [norms[depth] for depth in sorted(norms)]) for step, norms in norms_by_step.items()
    ]
    return [layers[depth] for depth in sorted(layers)], records
