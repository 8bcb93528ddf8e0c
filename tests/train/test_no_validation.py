"""--val-fraction 0: He et al.'s CIFAR table trained on every training image, no validation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.train import TrainConfig, train


def _config(out: Path, **changes: object) -> TrainConfig:
    values = {"model": "lenet1989", "data": "digits", "epochs": 2, "batch_size": 64}
    return TrainConfig(**{**values, "out": str(out), "plots": False, "quiet": True, **changes})


def test_without_validation_every_image_trains_and_the_last_weights_are_the_result(
    tmp_path: Path,
) -> None:
    held_out = train(_config(tmp_path / "held-out"))
    result = train(_config(tmp_path / "all", val_fraction=0.0))
    # digits: 1,438 training images after the fixed test split; 10 % of them validate by default.
    assert result.metrics["training_images"] == 1438 > held_out.metrics["training_images"]
    assert result.metrics["split"] == "test"
    best, last = (Checkpoint.load(tmp_path / "all" / name) for name in ("best.pt", "last.pt"))
    assert best.epoch == last.epoch == 2
    assert all(torch.equal(best.weights[k], last.weights[k]) for k in last.weights)
    with open(tmp_path / "all" / "log.csv") as handle:
        columns = next(csv.reader(handle))
    assert not [column for column in columns if column.startswith("val_")]
    assert json.loads((tmp_path / "all" / "metrics.json").read_text())["epochs"] == 2


def test_without_validation_a_set_with_no_test_split_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(4):
            pixels = rng.integers(0, 255, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{index}.png")
    config = _config(tmp_path / "run", data=f"folder:{tmp_path / 'images'}", val_fraction=0.0)
    with pytest.raises(CnnzooError, match="--val-fraction 0 leaves .* no test split"):
        train(config)


@pytest.mark.parametrize("fraction", [-0.1, 0.5])
def test_a_validation_share_outside_zero_to_a_half_is_refused(fraction: float) -> None:
    with pytest.raises(CnnzooError, match=r"val_fraction must be in \[0, 0.5\)"):
        TrainConfig(val_fraction=fraction).validate()
