"""Training a registered network inside an experiment: the engine's own run, kept in memory.

Experiments that compare networks of the registry (plain against residual,
with and without SE, DenseNet against ResNet) call the training engine
(:func:`cnnzoo.train.trainer.train`) exactly as ``cnnzoo train NAME`` would,
in a temporary run directory. The comparison needs each epoch's curves, the
test metrics and the trained network, not the checkpoints, so nothing of the
run is left on disk. (Variants that no registry entry describes are trained
by :mod:`cnnzoo.experiments.training` instead.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnzoo.runs.config import TrainConfig
from cnnzoo.runs.directory import scratch_run
from cnnzoo.train.callbacks import Callback
from cnnzoo.train.trainer import Trainer, train


@dataclass
class TrainedNetwork:
    """What an experiment keeps of one training run."""

    name: str  # the registered network
    model: nn.Module  # with the weights of the best validation epoch
    history: list[dict[str, Any]]  # one row per epoch: train_loss, train_top1, val_top1, ...
    metrics: dict[str, Any]  # the best epoch's weights on the test split (top1, loss, ...)

    @property
    def test_error(self) -> float:
        return 1.0 - self.metrics["top1"]


@dataclass
class _EpochRows(Callback):
    rows: list[dict[str, Any]] = field(default_factory=list)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))


# The engine's recipe (SGD with momentum 0.9, weight decay 5e-4, cosine schedule) on the
# 8x8 offline digits, without augmentation so that training error measures optimization alone.
EXPERIMENT_RECIPE: dict[str, Any] = {
    "data": "digits",
    "image_size": 8,
    "in_channels": 1,
    "epochs": 1,
    "batch_size": 64,
    "lr": 0.05,
    "augment": "none",
}


def train_registered(
    name: str,
    recipe: Mapping[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
) -> TrainedNetwork:
    """Train the registered network ``name`` and return the run.

    ``recipe`` holds :class:`TrainConfig` fields over :data:`EXPERIMENT_RECIPE`
    (``iterations`` stops after that many steps, for quick runs; ``model_options``
    go to the network's constructor); ``callbacks`` watch the run as it trains.
    """
    epoch_rows = _EpochRows()
    config = TrainConfig(**{**EXPERIMENT_RECIPE, **(recipe or {}), "model": name})
    with scratch_run(config, "experiment") as quiet:
        result = train(quiet, force=True, callbacks=[epoch_rows, *(callbacks or [])])
    return TrainedNetwork(name, result.model, epoch_rows.rows, result.metrics)
