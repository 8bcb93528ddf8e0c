"""Single-image latency: every network timed interleaved, in evaluation mode, then given back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.analysis.latency import measure_latencies, measure_latency


class _Recorder(nn.Module):
    """Records, per call, its name, whether it was training and whether grad was off."""

    def __init__(self, name: str, calls: list[tuple[str, bool, bool]]) -> None:
        super().__init__()
        self.name, self.calls = name, calls
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.name, self.training, torch.is_inference_mode_enabled()))
        return self.conv(x)


def test_networks_are_timed_in_turn_in_evaluation_and_inference_mode() -> None:
    calls: list[tuple[str, bool, bool]] = []
    first, second = _Recorder("a", calls), _Recorder("b", calls).eval()
    latencies = measure_latencies([(first, (1, 8, 8)), (second, (1, 12, 12))], warmup=1, repeats=3)
    assert [name for name, _, _ in calls] == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert all(not training and inference for _, training, inference in calls)
    assert first.training and not second.training  # each back in its own mode
    assert [latency.repeats for latency in latencies] == [3, 3]
    assert all(0 < latency.fastest_ms <= latency.median_ms for latency in latencies)


def test_one_network() -> None:
    latency = measure_latency(nn.Conv2d(3, 4, 3), (3, 16, 16), warmup=0, repeats=2)
    assert 0 < latency.fastest_ms <= latency.median_ms


def test_nothing_to_time_is_refused() -> None:
    with pytest.raises(ValueError, match="repeats >= 1"):
        measure_latency(nn.Conv2d(3, 4, 3), (3, 16, 16), repeats=0)
