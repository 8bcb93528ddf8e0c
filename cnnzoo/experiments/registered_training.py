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

from cnnzoo.data import DataSplits, load_data, plain_request
from cnnzoo.experiments.base import ExperimentRun
from cnnzoo.models.registry import get_model_entry
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
    in_channels: int = 1  # what the network was given: channels and (H, W)
    image_size: tuple[int, int] = (8, 8)
    training_images: int = 0  # after the recipe's train_fraction

    @property
    def test_error(self) -> float:
        return 1.0 - self.metrics["top1"]

    @property
    def input_text(self) -> str:
        """The input it trained on, for a report: ``"8x8 (1 channel)"``."""
        height, width = self.image_size
        channels = "1 channel" if self.in_channels == 1 else f"{self.in_channels} channels"
        return f"{height}x{width} ({channels})"


@dataclass
class _EpochRows(Callback):
    rows: list[dict[str, Any]] = field(default_factory=list)
    in_channels: int = 1
    image_size: tuple[int, int] = (8, 8)
    training_images: int = 0

    def on_train_start(self, trainer: Trainer) -> None:
        self.in_channels = trainer.in_channels
        self.image_size = (int(trainer.image_size[0]), int(trainer.image_size[1]))
        self.training_images = len(trainer.data.train)

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
    return TrainedNetwork(
        name,
        result.model,
        epoch_rows.rows,
        result.metrics,
        epoch_rows.in_channels,
        epoch_rows.image_size,
        epoch_rows.training_images,
    )


def trained_on(run: ExperimentRun, network: TrainedNetwork, default: str) -> str:
    """The data ``network`` trained on, in words for the report.

    ``default`` (the experiment's own words for its own data) when the user chose
    none; otherwise the chosen source, the input the network was given and the
    training images used: ``"`cifar10` at 32x32 (3 channels), 10,000 training images"``.
    """
    if run.data_source is None:
        return default
    text = (
        f"`{run.data_source}` at {network.input_text}, {network.training_images:,} training images"
    )
    if run.data is not None and run.data.train_fraction is not None:
        text += f" (a seeded, class-stratified {run.data.train_fraction:g} of its training split)"
    return text


def load_experiment_data(
    run: ExperimentRun, network: str, own: tuple[str, int, int], seed: int
) -> DataSplits:
    """The data an experiment reads outside the engine (a first batch, test images).

    ``own`` is the experiment's own ``(source, side, channels)``, used when the
    user chose no data; a chosen source is read as the engine trains the
    registered ``network`` on it: at the network's paper size and the data's
    own channels.
    """
    if run.data_source is None:
        source, side, channels = own
        return load_data(
            source, plain_request(image_size=(side, side), in_channels=channels, seed=seed)
        )
    _, height, width = get_model_entry(network).input_size
    return load_data(
        run.data_source, plain_request(image_size=(height, width), in_channels=None, seed=seed)
    )
