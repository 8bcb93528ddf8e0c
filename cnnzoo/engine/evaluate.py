"""Evaluation, and the batching both training and evaluation share.

A data set that can serve a whole batch by index (:class:`InMemoryImages`) is
sliced directly; any other split reads its items through its ``load_batches``
(a ``DataLoader``; persistent workers for image folders streamed from disk).
The model runs under ``torch.inference_mode`` in
evaluation mode, so batch norm uses its running statistics and dropout is off.

Without a batch size, evaluation takes as many images per step as fit in a
memory budget (:func:`eval_batch_size`): 256 LeNet digits, a few U-Net
images at 572x572. A fixed 256 once made a one-step U-Net run on CamVid
run out of 24 GB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import BadImageLog, first_readable_shape
from cnnzoo.data.protocol import as_split
from cnnzoo.engine.config import EVAL_MEMORY_MB
from cnnzoo.engine.metrics import MetricTracker
from cnnzoo.engine.runtime import autocast
from cnnzoo.progress import progress

LossFunction = Callable[[Tensor, Tensor], Tensor]
# A normalised float batch (N, C, H, W) to the network's main output: the model itself,
# or the same weights compiled or exported (cnnzoo.speed.runners).
Forward = Callable[[Tensor], Tensor]
# The forward for one job: (model, an example batch at the job's batch size, the images the
# job holds, whether they all have the example's size) -> Forward.
ForwardMaker = Callable[[nn.Module, Tensor, int, bool], Forward]


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


# The most images one evaluation step takes, however small they are (the former fixed size).
MAX_EVAL_BATCH = 256


class _AllocationCounter(TorchDispatchMode):
    """Bytes of every new tensor the operations under it create (views and in-place excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        result = func(*args, **(kwargs or {}))
        for output in result if isinstance(result, tuple | list) else (result,):
            fresh = isinstance(output, Tensor) and not any(output is a for a in args)
            if fresh and not output._is_view():
                self.bytes += output.numel() * output.element_size()
        return result


def activation_bytes(
    model: nn.Module,
    sample_shape: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    channels_last: bool = False,
) -> int:
    """Bytes of every tensor one forward pass of one (C, H, W) image creates, without grad.

    Counted as if none were freed, an upper bound on what evaluation holds
    at once per image. On the meta device the pass computes nothing.
    """
    was_training = model.training
    probe = torch.zeros((1, *sample_shape), device=device)
    probe, _ = to_device(probe, probe, torch.device(device), channels_last)
    counter = _AllocationCounter()
    model.eval()
    try:
        with torch.inference_mode(), autocast(device, precision), counter:
            model(probe)
    finally:
        model.train(was_training)
    return counter.bytes


def eval_batch_size(
    model: nn.Module, sample_shape: Sequence[int], memory_mb: int, **probe_options: Any
) -> int:
    """Images per evaluation step whose activations fit in ``memory_mb`` (1 to 256)."""
    per_image = max(1, activation_bytes(model, sample_shape, **probe_options))
    return max(1, min(MAX_EVAL_BATCH, memory_mb * 2**20 // per_image))


def dataset_batch_size(
    model: nn.Module, dataset: Dataset, memory_mb: int, **probe_options: Any
) -> int:
    """:func:`eval_batch_size` probed with the first image of ``dataset`` that decodes.

    A process's empty share of a small split, or a share whose files all fail
    to decode (each then goes to ``bad_images`` as the batches are read):
    any batch size will do, so 1.
    """
    sample_shape = first_readable_shape(dataset)
    if sample_shape is None:
        return 1
    return eval_batch_size(model, sample_shape, memory_mb, **probe_options)


def main_output(output: Tensor | tuple[Tensor, ...] | list[Tensor]) -> Tensor:
    """The main prediction of a model that may also return auxiliary outputs."""
    return output[0] if isinstance(output, tuple | list) else output


def model_forward(model: nn.Module) -> Forward:
    """The model's main output for a batch, as every runtime's forward returns it."""
    return lambda images: main_output(model(images))


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    task: str,
    num_classes: int,
    loss_fn: LossFunction | None = None,
    ignore_index: int | None = None,
    batch_size: int | None = None,
    memory_mb: int = EVAL_MEMORY_MB,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    channels_last: bool = False,
    workers: int | None = None,
    show_progress: bool = True,
    bad_images: BadImageLog | None = None,
    forward: Forward | None = None,
    on_scores: Callable[[Tensor, Tensor], None] | None = None,
) -> MetricTracker:
    """Run ``model`` over ``dataset`` and return the accumulated metrics.

    ``batch_size`` None takes what fits in ``memory_mb`` (:func:`dataset_batch_size`).
    A bar counts the batches where bars are on (:mod:`cnnzoo.progress`);
    ``show_progress=False`` hides it for this call (a process that is not the
    main one, a run asked to be quiet). An image that
    cannot be decoded goes to ``bad_images`` (by default: stop with a message naming it).
    ``forward`` runs the batches instead of the model itself (another runtime,
    the same weights), and ``on_scores`` sees each batch's scores and targets,
    for the per-image predictions ``cnnzoo eval --out`` writes.
    """
    device = torch.device(device)
    # A compiled graph is traced without autograd but not in inference mode: tensors made
    # in inference mode would make it trace (and compile) a second graph.
    no_autograd = torch.inference_mode if forward is None else torch.no_grad
    forward = forward or model_forward(model)
    if batch_size is None:
        options = {"device": device, "precision": precision, "channels_last": channels_last}
        batch_size = dataset_batch_size(model, dataset, memory_mb, **options)
    tracker = MetricTracker(task, num_classes, ignore_index)
    was_training = model.training
    model.eval()
    try:
        with no_autograd():
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
                    scores = forward(images)
                scores = scores.float()
                loss = float(loss_fn(scores, targets)) if loss_fn is not None else None
                tracker.update(scores, targets, loss)
                if on_scores is not None:
                    on_scores(scores, targets)
    finally:
        model.train(was_training)
    return tracker
