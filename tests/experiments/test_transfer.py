"""The transfer experiment's published numbers are those its full run recorded."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("page", ["guide/pretrained.md", "experiments.md"])
def test_the_docs_tables_quote_the_recorded_run(page: str) -> None:
    recorded = json.loads((DOCS / "experiments" / "transfer" / "results.json").read_text())
    assert recorded["quick"] is False
    text = (DOCS / page).read_text()
    for values in recorded["results"]["test_top1"].values():
        mean, spread = 100 * statistics.mean(values), 100 * statistics.stdev(values)
        assert f"{mean:.1f} ± {spread:.1f} %" in text
        assert " | ".join(f"{100 * value:.1f} %" for value in values) in text
