"""Latency of one forward pass on this machine, for side-by-side comparisons.

Each network is run a few times untimed (the first calls allocate memory and
pick kernels), then timed one image at a time under ``torch.inference_mode``.
Several networks are timed *interleaved* -- one run of each in turn -- so that
load from other processes falls on all of them alike, and the median is
reported because it shrugs off the occasional pause. Timings belong to this
machine and this moment: compare networks measured together.
``cnnzoo benchmark`` measures throughput in more detail.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn

from cnnzoo.analysis.receptive_field import evaluating
from cnnzoo.progress import progress


@dataclass(frozen=True)
class Latency:
    median_ms: float  # median over the timed runs, milliseconds per image
    fastest_ms: float
    repeats: int


def measure_latencies(
    models: Sequence[tuple[nn.Module, Sequence[int]]], *, warmup: int = 2, repeats: int = 10
) -> list[Latency]:
    """Milliseconds per image for each (model, input shape (C, H, W)), timed interleaved."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    inputs = []
    for model, shape in models:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        inputs.append(torch.randn(1, *shape, device=device))
    timings: list[list[float]] = [[] for _ in models]
    with torch.inference_mode(), ExitStack() as stack:
        for model, _ in models:
            stack.enter_context(evaluating(model))
        rounds = progress(range(warmup + repeats), f"timing {len(models)} network(s)", unit="round")
        for run in rounds:
            for index, ((model, _), x) in enumerate(zip(models, inputs)):
                start = time.perf_counter()
                model(x)
                if x.device.type == "cuda":
                    torch.cuda.synchronize(x.device)
                if run >= warmup:
                    timings[index].append((time.perf_counter() - start) * 1000)
    return [Latency(statistics.median(t), min(t), repeats) for t in timings]


def measure_latency(
    model: nn.Module, input_shape: Sequence[int], *, warmup: int = 2, repeats: int = 10
) -> Latency:
    """Milliseconds one image of ``input_shape`` (C, H, W) takes through ``model``."""
    return measure_latencies([(model, input_shape)], warmup=warmup, repeats=repeats)[0]
