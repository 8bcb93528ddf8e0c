"""``cnnzoo compare``: the table, the files it writes and the chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cnnzoo.cli import main


def _is_picture(path: Path) -> None:
    image = Image.open(path).convert("L")
    assert image.size[0] >= 400 and image.size[1] >= 300
    low, high = image.getextrema()
    assert high - low > 50, "the chart is blank"


def test_compares_named_models(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(
        ["compare", "lenet5", "lenet1989", "--input", "1,32,32", "--repeats", "2",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["model", "input", "params", "GMACs"]
    records = json.loads((tmp_path / "comparison.json").read_text())
    by_name = {r["model"]: r for r in records}
    assert set(by_name) == {"lenet5", "lenet1989"}
    # 61,706 with 10 classes; the default 1000 classes widen the 84 -> K output layer.
    assert by_name["lenet5"]["params"] == 61_706 - (84 * 10 + 10) + (84 * 1000 + 1000)
    assert by_name["lenet5"]["flops"] == 2 * by_name["lenet5"]["macs"] > 0
    assert by_name["lenet5"]["latency_ms"] > 0
    assert (tmp_path / "comparison.csv").read_text().startswith("label,model,input_shape")
    _is_picture(tmp_path / "comparison.png")


def test_wildcards_expand_and_mistakes_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["compare", "lenet*", "--no-latency", "--runs", str(tmp_path)]) == 2
    assert "metrics.json" in capsys.readouterr().err
    assert main(["compare"]) == 2
    assert "at least one model" in capsys.readouterr().err
    assert main(["compare", "nosuch*"]) == 2
    assert "no model matches" in capsys.readouterr().err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished (three-step) training run of LeNet-1989 on scikit-learn's digits."""
    from cnnzoo.train import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("lenet1989-digits")
    config = TrainConfig(
        model="lenet1989", data="digits", iterations=3, in_channels=1, augment="none",
        quiet=True, plots=False, out=str(run_dir),
    )  # fmt: skip
    train(config, force=True)
    return run_dir


def test_runs_add_their_test_score(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["compare", "--runs", str(digits_run), "--repeats", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    (record,) = json.loads((tmp_path / "comparison.json").read_text())
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert record["label"] == f"lenet1989 ({digits_run.name})"
    assert record["metric"] == "top1" and record["score"] == metrics["top1"]
    assert record["input_shape"] == [1, *metrics["image_size"]]
    assert record["params"] == metrics["params"]
    assert record["epochs"] == metrics["epochs"] == 1
    assert record["train_seconds"] == metrics["train_seconds"]
    table = capsys.readouterr().out
    assert f"top1 {metrics['top1']:.4f}" in table and "train s" in table
    _is_picture(tmp_path / "comparison.png")
