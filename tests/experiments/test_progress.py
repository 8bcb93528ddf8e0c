"""An experiment's runs show a bar named after the experiment, on a terminal only."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnzoo.progress
from cnnzoo.experiments.base import ExperimentRun


def test_runs_show_a_bar_named_after_the_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(cnnzoo.progress, "bars_enabled", lambda: True)
    run = ExperimentRun(out_dir=tmp_path, quick=True, name="degradation")
    assert list(run.progress(["plain20", "resnet20"], "training")) == ["plain20", "resnet20"]
    assert "degradation: training" in capsys.readouterr().err


def test_no_bar_when_output_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = ExperimentRun(out_dir=tmp_path, quick=True, name="degradation")
    assert list(run.progress(range(3), "training")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
