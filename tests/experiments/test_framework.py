import json
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.experiments import ExperimentRun, register_experiment, run_experiment
from cnnzoo.experiments.base import _EXPERIMENTS


@pytest.fixture
def toy_experiment():
    @register_experiment("toy", title="Toy", claim="two plus two is four")
    def toy(run: ExperimentRun) -> None:
        run.results["sum"] = 2 + 2
        run.table(["a", "b"], [[1, 2.5]])
        run.figure("plot.png", "a plot").write_bytes(b"png")
        run.check("the sum is four", run.results["sum"] == 4)
        run.finding("the sum is five", run.results["sum"] == 5, "it is four")

    yield "toy"
    del _EXPERIMENTS["toy"]


def test_report_and_results_are_written(toy_experiment: str, tmp_path: Path) -> None:
    run = run_experiment(toy_experiment, tmp_path, quick=True)
    assert [c.passed for c in run.checks] == [True]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["results"] == {"sum": 4}
    assert results["findings"][0]["passed"] is False
    report = (tmp_path / "report.md").read_text()
    assert "**Claim.** two plus two is four" in report
    assert "did not reproduce: the sum is five (it is four)" in report
    assert "| 1 | 2.5 |" in report and "![a plot](plot.png)" in report


def test_duplicate_and_unknown_names(toy_experiment: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_experiment("toy", title="", claim="")(lambda run: None)
    with pytest.raises(CnnzooError, match="unknown experiment"):
        run_experiment("no-such-experiment", tmp_path)


def test_cli_runs_and_lists(toy_experiment: str, tmp_path: Path, capsys) -> None:
    assert main(["experiment", "list"]) == 0
    assert "two plus two is four" in capsys.readouterr().out
    assert main(["experiment", "run", "toy", "--quick", "--out", str(tmp_path / "t")]) == 0
    assert "PASS  the sum is four" in capsys.readouterr().out
    assert main(["experiment", "run", "nope"]) == 2
