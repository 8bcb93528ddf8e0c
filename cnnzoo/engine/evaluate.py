"""Evaluation, and the batching both training and evaluation share.

A data set that can serve a whole batch by index (:class:`InMemoryImages`) is
sliced directly; any other split reads its items through its ``load_batches``
(a ``DataLoader``; persistent workers for image folders streamed from disk).
The model runs under ``torch.inference_mode`` in
evaluation mode, so batch norm uses its running statistics and dropout is off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.protocol import as_split
from cnnzoo.engine.metrics import MetricTracker
from cnnzoo.engine.runtime import autocast
from cnnzoo.progress import progress

LossFunction = Callable[[Tensor, Tensor], Tensor]


def batches_per_epoch(samples: int, batch_size: int) -> int:
    """Full batches plus the remainder, except a remainder of one sample.

    Batch normalisation cannot normalise a batch of one image, so that last
    sample is skipped (a different one each epoch, as the order is shuffled).
    """
    full, rest = divmod(samples, batch_size)
    return full + (1 if rest > 1 or full == 0 else 0)


def iterate_batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    workers: int | None = None,
    training: bool = False,
    bad_images: BadImageLog | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """(images, targets) batches; in training the trailing single sample is left out.

    A file that cannot be decoded goes to ``bad_images`` (by default: stop).
    """
    samples = len(dataset)
    count = batches_per_epoch(samples, batch_size) if training else -(-samples // batch_size)
    dataset = as_split(dataset)
    order = torch.randperm(samples, generator=generator) if shuffle else torch.arange(samples)
    chunks = [
        order[start : start + batch_size] for start in range(0, count * batch_size, batch_size)
    ]
    if dataset.batch is not None:
        for indices in chunks:
            yield dataset.batch(indices, generator)
        return
    batches = [indices.tolist() for indices in chunks]
    yield from dataset.load_batches(
        batches, workers=workers, generator=generator,
        bad_images=bad_images, minimum=2 if training else 1,
    )  # fmt: skip


def to_device(
    images: Tensor, targets: Tensor, device: torch.device, channels_last: bool
) -> tuple[Tensor, Tensor]:
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, targets.to(device, non_blocking=True)


def main_output(output: Tensor | tuple[Tensor, ...] | list[Tensor]) -> Tensor:
    """The main prediction of a model that may also return auxiliary outputs."""
    return output[0] if isinstance(output, tuple | list) else output


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    task: str,
    num_classes: int,
    loss_fn: LossFunction | None = None,
    ignore_index: int | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    channels_last: bool = False,
    workers: int | None = None,
    show_progress: bool = True,
    bad_images: BadImageLog | None = None,
) -> MetricTracker:
    """Run ``model`` over ``dataset`` and return the accumulated metrics.

    A bar counts the batches where bars are on (:mod:`cnnzoo.progress`);
    ``show_progress=False`` hides it for this call (a process that is not the
    main one, a run asked to be quiet). An image that cannot be decoded goes to
    ``bad_images`` (by default: stop with a message naming it).
    """
    device = torch.device(device)
    tracker = MetricTracker(task, num_classes, ignore_index)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batches = progress(
                iterate_batches(dataset, batch_size, workers=workers, bad_images=bad_images),
                "evaluating",
                total=-(-len(dataset) // batch_size),
                unit="batch",
                enabled=show_progress,
            )
            for images, targets in batches:
                images, targets = to_device(images, targets, device, channels_last)
                with autocast(device, precision):
                    scores = main_output(model(images))
                scores = scores.float()
                loss = float(loss_fn(scores, targets)) if loss_fn is not None else None
                tracker.update(scores, targets, loss)
    finally:
        model.train(was_training)
    return tracker
