"""Timing several ways of doing the same work, interleaved, so machine noise falls on all alike.

On a shared machine another process can take a core for seconds; timing one
candidate after another would charge that to whichever ran then. Instead one
call of each candidate runs in turn, the order reversing every round, and
each candidate's median over the rounds is compared. The speed tools time
whole steps this way, the instruments single forward passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from cnnzoo.progress import progress


def interleaved_latencies(
    steps: list[Callable[[], object]], warmup: int, iters: int, description: str = ""
) -> list[list[float]]:
    """Seconds per call of each step, timed in turn; the order reverses every round.

    ``warmup`` untimed rounds come first (the first calls allocate memory and
    pick kernels). With a ``description`` the timed rounds show a bar on a
    terminal.
    """
    for _ in range(warmup):
        for step in steps:
            step()
    latencies: list[list[float]] = [[] for _ in steps]
    rounds = progress(range(iters), description, unit="round", enabled=bool(description))
    for round_index in rounds:
        for index in _alternating(len(steps), round_index):
            start = time.perf_counter()
            steps[index]()
            latencies[index].append(time.perf_counter() - start)
    return latencies


def _alternating(count: int, round_index: int) -> Iterator[int]:
    order = range(count)
    return iter(order if round_index % 2 == 0 else reversed(order))


def percentile(values: list[float], fraction: float) -> float:
    """The value ``fraction`` of the way through ``values`` sorted (0.5: the median)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
