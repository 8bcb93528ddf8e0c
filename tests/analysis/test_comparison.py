"""A comparison's latencies carry the machine's load into its table, files and chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnzoo.analysis.comparison import ModelSummary, format_comparison, write_comparison
from cnnzoo.measure.load import MachineLoad

IDLE = MachineLoad(0.1, 0.2, 2)
BUSY = MachineLoad(3.5, 4.0, 2)


def _rows(load: MachineLoad) -> list[ModelSummary]:
    return [
        ModelSummary(name, name, (1, 8, 8), params, 2 * params, latency, None, None, load=load)
        for name, params, latency in (("small", 100, 1.0), ("large", 5000, 3.0))
    ]


@pytest.mark.parametrize(
    ("load", "said"),
    [(IDLE, "latency measured idle (load 0.10 -> 0.20 on 2 cores)"),
     (BUSY, "latency measured under load (load 3.50 -> 4.00 on 2 cores)")],
)  # fmt: skip
def test_the_table_says_how_busy_the_machine_was(load: MachineLoad, said: str) -> None:
    assert format_comparison(_rows(load)).splitlines()[-1] == said


def test_files_record_the_load(tmp_path: Path) -> None:
    write_comparison(_rows(BUSY), tmp_path)
    (record, _) = json.loads((tmp_path / "comparison.json").read_text())
    assert record["load"] == {
        "start": 3.5,
        "end": 4.0,
        "cores": 2,
        "other_cores": None,
        "busy": True,
    }
    assert "measured under load" in (tmp_path / "comparison.csv").read_text()


def test_a_comparison_without_timing_names_no_load() -> None:
    rows = [ModelSummary("a", "a", (1, 8, 8), 10, 20, None, "top1", 0.9)]
    assert "load" not in format_comparison(rows)
