"""Folding batch normalisation into the convolution before it, for inference.

Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", 2015 (arXiv:1502.03167), section 3.1: at
inference the normalisation uses fixed population statistics, so it is an
affine map per channel, ``y = gamma * (x - mean) / sqrt(var + eps) + beta``.
When ``x`` is a convolution's output, that map can be absorbed into the
convolution's weights and bias once, and the network then runs one memory
pass fewer per convolution at identical arithmetic (up to rounding).

The folding is generic: instead of relying on module names or on
``nn.Sequential`` order, one forward pass records which tensor every
convolution produced and which tensor every batch norm received. A pair is
folded only when the batch norm consumes a convolution's output *and nothing
else reads that output*, so blocks that branch, concatenate or add in their
``forward`` code (ResNet, Inception, DenseNet, MBConv) are handled as safely
as plain stacks.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from cnnzoo.errors import CnnzooError
from cnnzoo.measure.modes import evaluating

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED_CONVOLUTIONS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass(frozen=True)
class ConvBatchNormPair:
    """A convolution whose output feeds only the batch norm after it."""

    convolution: str  # qualified module name, as in ``model.named_modules()``
    batch_norm: str


class _TensorReads(TorchFunctionMode):
    """Counts, per tensor, the torch calls that read it and return a tensor.

    Calls that only inspect metadata (``x.dim()``, ``x.shape``) return no
    tensor and are not reads of the values, so they do not block a fold.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[int] = Counter()
        self.alive: list[Tensor] = []  # keeps ids unique for the whole trace

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        result = func(*args, **(kwargs or {}))
        if any(isinstance(leaf, Tensor) for leaf in tree_flatten(result)[0]):
            for leaf in tree_flatten((args, kwargs))[0]:
                if isinstance(leaf, Tensor):
                    self.reads[id(leaf)] += 1
                    self.alive.append(leaf)
        return result


def find_conv_batchnorm_pairs(model: nn.Module, example_input: Any) -> list[ConvBatchNormPair]:
    """The (convolution, batch norm) pairs of ``model`` that can be folded.

    Runs ``model`` once on ``example_input`` in eval mode and keeps a pair when
    the batch norm's input *is* the convolution's output, that output is read
    by nothing else (not even returned), each module runs exactly once, and
    the batch norm normalises with stored statistics.
    """
    names = {module: name for name, module in model.named_modules()}
    calls: Counter[nn.Module] = Counter()
    produced_by: dict[int, nn.Module] = {}
    consumed_by: dict[nn.Module, Tensor] = {}

    def after_convolution(module: nn.Module, inputs: Any, output: Tensor) -> None:
        calls[module] += 1
        produced_by[id(output)] = module

    def before_batch_norm(module: nn.Module, inputs: Any) -> None:
        calls[module] += 1
        consumed_by[module] = inputs[0]

    handles = []
    for module in names:
        if isinstance(module, _CONVOLUTIONS + _TRANSPOSED_CONVOLUTIONS):
            handles.append(module.register_forward_hook(after_convolution))
        elif isinstance(module, _BatchNorm):
            handles.append(module.register_forward_pre_hook(before_batch_norm))
    try:
        with evaluating(model), torch.no_grad(), _TensorReads() as reads:
            output = model(example_input)
            for leaf in tree_flatten(output)[0]:
                if isinstance(leaf, Tensor):
                    reads.reads[id(leaf)] += 1  # a returned map is read by the caller
    finally:
        for handle in handles:
            handle.remove()

    pairs = []
    for batch_norm, received in consumed_by.items():
        convolution = produced_by.get(id(received))
        if (
            convolution is not None
            and reads.reads[id(received)] == 1
            and calls[convolution] == 1
            and calls[batch_norm] == 1
            and batch_norm.running_mean is not None
            and batch_norm.running_var is not None
        ):
            pairs.append(ConvBatchNormPair(names[convolution], names[batch_norm]))
    return sorted(pairs, key=lambda pair: list(names.values()).index(pair.convolution))


def fold_conv_batchnorm(model: nn.Module, example_input: Any | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` with every foldable batch norm absorbed into its convolution.

    The folded batch norms become ``nn.Identity``; ``model`` itself is left
    untouched. ``example_input`` (any valid input) defaults to one image of
    the model's smallest accepted size. The result is meant for inference:
    training it would no longer normalise by batch statistics.
    """
    folded = copy.deepcopy(model).eval()
    if example_input is None:
        example_input = _smallest_input(folded)
    fold_pairs(folded, find_conv_batchnorm_pairs(folded, example_input))
    return folded


def fold_pairs(model: nn.Module, pairs: list[ConvBatchNormPair]) -> None:
    """Fold each pair found by :func:`find_conv_batchnorm_pairs` into ``model``, in place."""
    for pair in pairs:
        convolution = model.get_submodule(pair.convolution)
        batch_norm = model.get_submodule(pair.batch_norm)
        transpose = isinstance(convolution, _TRANSPOSED_CONVOLUTIONS)
        _replace(model, pair.convolution, fuse_conv_bn_eval(convolution, batch_norm, transpose))
        _replace(model, pair.batch_norm, nn.Identity())


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child_name = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child_name, new)


def _smallest_input(model: nn.Module) -> Tensor:
    in_channels = getattr(model, "in_channels", None)
    size = getattr(model, "min_input_size", None)
    if in_channels is None or size is None:
        raise CnnzooError(
            f"{type(model).__name__} does not say what input it takes; pass example_input"
        )
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    return torch.randn(1, in_channels, size, size, dtype=dtype)
