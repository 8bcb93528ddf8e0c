"""The interleaved timer the speed tools and the instruments share."""

from __future__ import annotations

import pytest

import cnnzoo.progress
from cnnzoo.measure.timing import interleaved_latencies, percentile


def test_interleaving_alternates_the_order() -> None:
    calls: list[str] = []
    steps = [lambda: calls.append("ours"), lambda: calls.append("theirs")]
    latencies = interleaved_latencies(steps, warmup=1, iters=4)
    assert calls == ["ours", "theirs"] + ["ours", "theirs", "theirs", "ours"] * 2
    assert [len(times) for times in latencies] == [4, 4]
    assert all(time >= 0 for times in latencies for time in times)


def test_timed_rounds_show_a_bar_on_a_terminal(monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setattr(cnnzoo.progress, "bars_enabled", lambda: True)
    interleaved_latencies([lambda: None], warmup=0, iters=3, description="lenet5 infer")
    assert "lenet5 infer" in capsys.readouterr().err


def test_without_a_description_no_bar_is_shown(monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setattr(cnnzoo.progress, "bars_enabled", lambda: True)
    interleaved_latencies([lambda: None], warmup=0, iters=3)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.0, 1.0), (0.1, 1.0), (0.5, 3.0), (0.9, 5.0), (1.0, 5.0)]
)
def test_percentile_picks_the_nearest_sorted_value(fraction: float, expected: float) -> None:
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], fraction) == expected
