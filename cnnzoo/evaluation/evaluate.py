"""Evaluation: a network's metrics over a split.

The split's batches come from :func:`~cnnzoo.data.batches.iterate_batches`. The
model runs under ``torch.inference_mode`` in evaluation mode, so batch norm uses its
running statistics and dropout is off. Without a batch size, evaluation takes as many
images per step as fit in a memory budget
(:func:`~cnnzoo.inference.batching.eval_batch_size`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.batches import iterate_batches, to_device
from cnnzoo.device.placement import autocast
from cnnzoo.evaluation.metrics import MetricTracker
from cnnzoo.inference.batching import Forward, dataset_batch_size, model_forward
from cnnzoo.measure.modes import evaluating
from cnnzoo.progress import progress
from cnnzoo.runs.config import EVAL_MEMORY_MB

LossFunction = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class EvalOptions:
    """How :func:`evaluate` runs the batches, and who sees them besides the metrics.

    The trainer fills these from its recipe, ``cnnzoo eval`` from the checkpoint and its flags.
    """

    batch_size: int | None = None  # images per step; None: what fits in ``memory_mb``
    memory_mb: int = EVAL_MEMORY_MB  # memory budget that picks the batch size when unset
    device: torch.device | str = "cpu"  # where the model and the batches sit
    precision: str = "fp32"  # autocast precision (cnnzoo.device.placement.autocast)
    channels_last: bool = False  # feed images in NHWC memory layout
    workers: int | None = None  # loader processes for splits streamed from disk
    show_progress: bool = True  # False hides the bar (a worker process, a quiet run)
    bad_images: BadImageLog | None = None  # where undecodable images go; None: stop on one
    forward: Forward | None = None  # runs the batches instead of the model (another runtime)
    on_scores: Callable[[Tensor, Tensor], None] | None = None  # sees each batch's scores, targets


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    task: str,
    num_classes: int,
    loss_fn: LossFunction | None = None,
    ignore_index: int | None = None,
    options: EvalOptions | None = None,
) -> MetricTracker:
    """Run ``model`` over ``dataset`` and return the accumulated metrics.

    ``options.batch_size`` None takes what fits in ``options.memory_mb``
    (:func:`dataset_batch_size`). A bar counts the batches where bars are on
    (:mod:`cnnzoo.progress`); ``show_progress=False`` hides it for this call (a
    process that is not the main one, a run asked to be quiet). An image that
    cannot be decoded goes to ``bad_images`` (by default: stop with a message naming it).
    ``forward`` runs the batches instead of the model itself (another runtime,
    the same weights), and ``on_scores`` sees each batch's scores and targets,
    for the per-image predictions ``cnnzoo eval --out`` writes.
    """
    options = options or EvalOptions()
    device = torch.device(options.device)
    precision, channels_last = options.precision, options.channels_last
    # A compiled graph is traced without autograd but not in inference mode: tensors made
    # in inference mode would make it trace (and compile) a second graph.
    no_autograd = torch.inference_mode if options.forward is None else torch.no_grad
    forward = options.forward or model_forward(model)
    batch_size = options.batch_size
    if batch_size is None:
        placement = {"device": device, "precision": precision, "channels_last": channels_last}
        batch_size = dataset_batch_size(model, dataset, options.memory_mb, **placement)
    tracker = MetricTracker(task, num_classes, ignore_index)
    with evaluating(model), no_autograd():
        batches = progress(
            iterate_batches(
                dataset, batch_size, workers=options.workers, bad_images=options.bad_images
            ),
            "evaluating",
            total=-(-len(dataset) // batch_size),
            unit="batch",
            enabled=options.show_progress,
        )
        for images, targets in batches:
            images, targets = to_device(images, targets, device, channels_last)
            with autocast(device, precision):
                scores = forward(images)
            scores = scores.float()
            loss = float(loss_fn(scores, targets)) if loss_fn is not None else None
            tracker.update(scores, targets, loss)
            if options.on_scores is not None:
                options.on_scores(scores, targets)
    return tracker
