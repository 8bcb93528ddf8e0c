"""How long one training epoch takes, and how much of it is spent preparing data.

The epoch is the one ``cnnzoo train MODEL --data DATA`` runs: the engine's
own :class:`~cnnzoo.train.trainer.Trainer` (one
:func:`~cnnzoo.train.step.train_step` per batch), with its default recipe, is
built and run for a few epochs and the training time of each epoch is read
from it after the epoch (validation excluded). The data share is measured by
drawing the same epoch's batches from the same pipeline
(:func:`~cnnzoo.data.batches.iterate_batches`: slicing the in-memory
tensor, augmenting and normalising whole batches) with no network attached.
The fastest epoch is reported, the first one being slowed by one-off
set-up (kernel selection, memory allocation).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from cnnzoo.data.batches import iterate_batches
from cnnzoo.device.memory_format import layout_name
from cnnzoo.device.placement import epoch_generator
from cnnzoo.runs.config import TrainConfig
from cnnzoo.runs.directory import scratch_run
from cnnzoo.train.callbacks import Callback
from cnnzoo.train.trainer import Trainer


@dataclass
class EpochTiming:
    """One epoch of training, split into data preparation and compute."""

    model: str
    model_options: dict[str, Any]  # the constructor's options, e.g. {"backbone": "resnet18"}
    data: str
    batch_size: int
    threads: int
    precision: str
    channels_last: bool  # the layout the network trained in
    images: int  # training images in one epoch
    epoch_seconds: float  # training time of the fastest epoch, as the engine measures it
    data_seconds: float  # drawing that many batches from the data pipeline alone
    compute_seconds: float  # epoch_seconds - data_seconds: forward, backward, update
    data_share: float  # data_seconds / epoch_seconds
    images_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _EpochClock(Callback):
    """Reads the trainer's accumulated training time after every epoch."""

    def __init__(self) -> None:
        self.totals: list[float] = []

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.totals.append(trainer.compute_seconds)


def benchmark_epoch(
    model: str,
    data: str = "mnist5k",
    *,
    batch_size: int | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    epochs: int = 3,
    model_options: dict[str, Any] | None = None,
) -> EpochTiming:
    """Train ``model`` on ``data`` for ``epochs`` epochs and time the fastest one.

    ``model_options`` go to the model's constructor, as ``train --model-option``
    gives them (U-Net's ``backbone="resnet18"``).
    """
    clock = _EpochClock()
    config = TrainConfig(
        model=model,
        data=data,
        epochs=epochs,
        batch_size=batch_size or TrainConfig.batch_size,
        threads=threads,
        precision=precision,
        channels_last=channels_last,
        model_options=dict(model_options or {}),
    )
    with scratch_run(config, "epoch") as quiet:
        trainer = Trainer(quiet, callbacks=[clock])
        trainer.fit()
    epoch_times = [later - earlier for earlier, later in zip([0.0, *clock.totals], clock.totals)]
    fastest = min(range(len(epoch_times)), key=epoch_times.__getitem__)
    data_seconds = min(_time_data_pipeline(trainer, config, epoch) for epoch in range(2))
    images = len(trainer.data.train)
    epoch_seconds = epoch_times[fastest]
    return EpochTiming(
        model=model,
        model_options=config.model_options,
        data=data,
        batch_size=config.batch_size,
        threads=torch.get_num_threads(),
        precision=precision,
        channels_last=trainer.channels_last,
        images=images,
        epoch_seconds=epoch_seconds,
        data_seconds=data_seconds,
        compute_seconds=epoch_seconds - data_seconds,
        data_share=data_seconds / epoch_seconds,
        images_per_second=images / epoch_seconds,
    )


def _time_data_pipeline(trainer: Trainer, config: TrainConfig, epoch: int) -> float:
    started = time.perf_counter()
    for _ in iterate_batches(
        trainer.data.train,
        config.batch_size,
        shuffle=True,
        generator=epoch_generator(config.seed, epoch),
        workers=config.workers,
        training=True,
    ):
        pass
    return time.perf_counter() - started


def format_epoch(timing: EpochTiming) -> str:
    """Two lines: the epoch and its split."""
    threads = f"{timing.threads} thread" + ("" if timing.threads == 1 else "s")
    options = ", ".join(f"{key}={value}" for key, value in timing.model_options.items())
    model = f"{timing.model} ({options})" if options else timing.model
    return (
        f"{model} on {timing.data}: one epoch of {timing.images} images in "
        f"{timing.epoch_seconds:.2f} s ({timing.images_per_second:.0f} img/s, batch "
        f"{timing.batch_size}, {threads}, {timing.precision}, "
        f"{layout_name(timing.channels_last)})\n"
        f"  data pipeline {timing.data_seconds:.3f} s ({100 * timing.data_share:.1f}%), "
        f"compute {timing.compute_seconds:.2f} s ({100 * (1 - timing.data_share):.1f}%)"
    )
