"""Every registered experiment runs end to end in its quick form and its checks hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnzoo.experiments import list_experiments, run_experiment

EXPERIMENTS = [e.name for e in list_experiments()]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_run_writes_a_report_whose_checks_pass(name: str, tmp_path: Path) -> None:
    run = run_experiment(name, tmp_path, quick=True)
    failed = [c.claim for c in run.checks if not c.passed]
    assert not failed, failed
    assert run.checks, "an experiment must check its own numbers"
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["experiment"] == name and results["quick"] is True
    report = (tmp_path / "report.md").read_text()
    for figure, _caption in run.figures:
        path = tmp_path / figure
        assert path.stat().st_size > 1000, figure
        assert f"({figure})" in report
