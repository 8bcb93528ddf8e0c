"""Floating-point operations of a network, in total, per module, and for a training step.

Counts come from :class:`torch.utils.flop_counter.FlopCounterMode`, which
applies a formula to every convolution and matrix product a forward (and
backward) pass performs. Its convention, which cnnzoo keeps, is
**FLOPs = 2 x MACs**: one multiply-accumulate is a multiplication and an
addition. Papers and torchvision's model tables usually quote
*multiply-accumulates* (ResNet-50: 4.1 G at 224x224) and often call them
FLOPs, so cnnzoo reports both: ``flops`` and ``macs = flops / 2``.
Element-wise work (activations, batch norm, pooling, additions) is not
counted, as in those tables.

Every count goes through :func:`flop_counter`, which replaces PyTorch's
formula for a convolution's backward with one that respects ``groups``:
each gradient it computes costs what the forward did. Per-module counts are taken by
reading the counter's running total before and after each module runs, so a
module's count includes its children and a module called several times
accumulates all its calls.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo.measure.modes import evaluating


def _convolution_backward_flops(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: list[bool],
    **kwargs: Any,
) -> int:
    """Each gradient a convolution's backward computes costs what its forward did.

    PyTorch's own formula (torch 2.14) ignores ``groups`` in the weight
    gradient and so counts a depthwise convolution's backward ``channels``
    times too high (MobileNet-v2 at 224x224: 12 GFLOP per training image
    instead of 1.8). ``w_shape`` already holds ``in_channels / groups``.
    """
    spatial = (x_shape if transposed else grad_out_shape)[2:]
    forward = 2 * x_shape[0] * math.prod(spatial) * math.prod(w_shape)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def flop_counter() -> FlopCounterMode:
    """A silent ``FlopCounterMode`` whose convolution backward respects ``groups``."""
    return FlopCounterMode(
        display=False,
        custom_mapping={torch.ops.aten.convolution_backward: _convolution_backward_flops},
    )


@dataclass
class FlopReport:
    """FLOPs (= 2 x MACs) of one forward pass of a single image."""

    total: int
    per_module: dict[str, int] = field(default_factory=dict)  # qualified name -> FLOPs

    @property
    def macs(self) -> float:
        """Multiply-accumulates: the unit papers quote as "FLOPs"."""
        return self.total / 2


class ModuleFlops:
    """Context manager attributing the FLOPs of a forward pass to every submodule."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.counter = flop_counter()
        self.per_module: dict[str, int] = defaultdict(int)
        self._starts: dict[str, list[int]] = defaultdict(list)
        self._handles: list[Any] = []

    @property
    def total(self) -> int:
        return self.counter.get_total_flops()

    def _before(self, name: str) -> Callable:
        def hook(module: nn.Module, inputs: Any) -> None:
            self._starts[name].append(self.total)

        return hook

    def _after(self, name: str) -> Callable:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            self.per_module[name] += self.total - self._starts[name].pop()

        return hook

    def __enter__(self) -> ModuleFlops:
        for name, module in self.model.named_modules():
            if name:
                self._handles.append(module.register_forward_pre_hook(self._before(name)))
                self._handles.append(module.register_forward_hook(self._after(name)))
        self.counter.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.counter.__exit__(*exc)
        for handle in self._handles:
            handle.remove()

    def report(self) -> FlopReport:
        return FlopReport(self.total, dict(self.per_module))


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> FlopReport:
    """FLOPs of ``model`` on one image of ``input_shape`` (C, H, W), in evaluation mode.

    A model built on the meta device (``with torch.device("meta")``) is counted
    from shapes alone, without computing anything.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros(1, *input_shape, device=device)
    with torch.no_grad(), evaluating(model), ModuleFlops(model) as flops:
        model(x)
    return flops.report()


def parameter_count(model: nn.Module) -> int:
    """How many weights ``model`` holds: the other half of every cost comparison."""
    return sum(p.numel() for p in model.parameters())
