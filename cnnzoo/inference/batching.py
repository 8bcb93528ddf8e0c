"""Running a network over batches: what runs them, and how many images fit in one.

Without a batch size, evaluation and prediction take as many images per step as fit in a
memory budget (:func:`eval_batch_size`): 256 LeNet digits, a few U-Net images at
572x572. A fixed 256 once made a one-step U-Net run on CamVid run out of 24 GB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import first_readable_shape
from cnnzoo.data.batches import to_device
from cnnzoo.device.placement import autocast
from cnnzoo.measure.modes import evaluating

# A normalised float batch (N, C, H, W) to the network's main output: the model itself,
# or the same weights compiled or exported (cnnzoo.speed.runners).
Forward = Callable[[Tensor], Tensor]


# The forward for one job: (model, an example batch at the job's batch size, the images the
# job holds, whether they all have the example's size) -> Forward.
ForwardMaker = Callable[[nn.Module, Tensor, int, bool], Forward]


# The most images one evaluation step takes, however small they are.
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
    probe = torch.zeros((1, *sample_shape), device=device)
    probe, _ = to_device(probe, probe, torch.device(device), channels_last)
    counter = _AllocationCounter()
    with evaluating(model), torch.inference_mode(), autocast(device, precision), counter:
        model(probe)
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
