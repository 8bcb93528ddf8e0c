"""Gradient norms recorded as a training callback, from the command line and from Python."""

from __future__ import annotations

import csv
from pathlib import Path

from cnnzoo.cli import main
from cnnzoo.train import TrainConfig, train
from cnnzoo.train.callbacks import GradientNormLogger

TINY = ["lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "1", "--quiet"]
TINY += ["--threads", "1", "--no-plots", "--iterations", "4"]


def test_the_command_line_records_gradient_norms(tmp_path: Path) -> None:
    assert main(["train", *TINY, "--log-grad-norms", "2", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "grad_norms.csv") as handle:
        steps = {row["step"] for row in csv.DictReader(handle)}
    assert steps == {"0", "2"}
    assert (tmp_path / "grad_norms.png").stat().st_size > 1000


def test_records_can_stay_in_memory(tmp_path: Path) -> None:
    logger = GradientNormLogger(1, save=False)
    config = TrainConfig(
        model="lenet1989", data="digits", image_size=16, iterations=3, threads=1, quiet=True,
        plots=False, out=str(tmp_path),
    )  # fmt: skip
    train(config, callbacks=[logger])
    assert logger.recorder is not None
    assert [step for step, _ in logger.recorder.records] == [0, 1, 2]
    assert not (tmp_path / "grad_norms.csv").exists()
