"""Latency of one forward pass on this machine, for side-by-side comparisons.

Each network is run a few times untimed (the first calls allocate memory and
pick kernels), then timed one image at a time under ``torch.inference_mode``.
Several networks are timed *interleaved* by :mod:`cnnzoo.measure.timing` --
one run of each in turn, the order reversing every round -- so that load from
other processes falls on all of them alike, and the median is reported
because it shrugs off the occasional pause. Timings belong to this machine
and this moment: compare networks measured together. ``cnnzoo benchmark``
measures throughput in more detail.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cnnzoo.measure.modes import evaluating
from cnnzoo.measure.timing import interleaved_latencies


@dataclass(frozen=True)
class Latency:
    median_ms: float  # median over the timed runs, milliseconds per image
    fastest_ms: float
    repeats: int


def _forward(model: nn.Module, x: Tensor) -> Callable[[], None]:
    """One forward pass of ``x``, waited for on a GPU so that its time is the pass's own."""

    def run() -> None:
        model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)

    return run


def measure_latencies(
    models: Sequence[tuple[nn.Module, Sequence[int]]], *, warmup: int = 2, repeats: int = 10
) -> list[Latency]:
    """Milliseconds per image for each (model, input shape (C, H, W)), timed interleaved."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    steps = []
    for model, shape in models:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        steps.append(_forward(model, torch.randn(1, *shape, device=device)))
    with torch.inference_mode(), ExitStack() as stack:
        for model, _ in models:
            stack.enter_context(evaluating(model))
        seconds = interleaved_latencies(steps, warmup, repeats, f"timing {len(models)} network(s)")
    return [Latency(statistics.median(t) * 1000, min(t) * 1000, repeats) for t in seconds]


def measure_latency(
    model: nn.Module, input_shape: Sequence[int], *, warmup: int = 2, repeats: int = 10
) -> Latency:
    """Milliseconds one image of ``input_shape`` (C, H, W) takes through ``model``."""
    return measure_latencies([(model, input_shape)], warmup=warmup, repeats=repeats)[0]
