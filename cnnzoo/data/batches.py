"""Batches of a split, for training and evaluation alike.

A data set that can serve a whole batch by index (:class:`InMemoryImages`) is
sliced directly; any other split reads its items through its ``load_batches``
(a ``DataLoader``; persistent workers for image folders streamed from disk).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.protocol import as_split


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
