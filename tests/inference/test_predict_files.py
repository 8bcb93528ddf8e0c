"""A segmentation network through predict and eval: masks, a table, IoU by class name."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import cnnzoo.inference.predictor as predictor_module
from cnnzoo.cli import main
from cnnzoo.data.synthetic_shapes import SHAPE_CLASSES
from cnnzoo.evaluation.saved_network import evaluate_checkpoint
from cnnzoo.runs.config import TrainConfig


def _tiny_segmenter(**options: object) -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(3, len(SHAPE_CLASSES), 3, padding=1)


@pytest.fixture
def segmentation_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkpoint of a one-layer network under a registered segmentation model's name."""
    monkeypatch.setattr(predictor_module, "create_model", lambda *a, **k: _tiny_segmenter())
    config = TrainConfig(model="segnet_basic", data="shapes", image_size=16, quiet=True)
    checkpoint = {
        "format": 1, "model_name": "segnet_basic", "task": "segmentation",
        "class_names": SHAPE_CLASSES, "in_channels": 3, "image_size": [16, 16],
        "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3}, "config": config.to_dict(),
        "model": _tiny_segmenter().state_dict(), "epoch": 1,
    }  # fmt: skip
    (tmp_path / "run").mkdir()
    torch.save(checkpoint, tmp_path / "run" / "best.pt")
    return tmp_path / "run"


def test_segmentation_eval_names_each_class(segmentation_run: Path, tmp_path: Path) -> None:
    evaluation = evaluate_checkpoint(
        segmentation_run, device="cpu", out_dir=tmp_path / "eval", batch_size=50
    )
    metrics = evaluation.metrics
    assert list(metrics["iou_by_class"]) == SHAPE_CLASSES
    assert list(metrics["iou_by_class"].values()) == metrics["iou_per_class"]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert list(report["classes"]) == SHAPE_CLASSES
    assert set(report["classes"]["circle"]) == {"iou", "accuracy", "pixels"}
    assert report["classes"]["circle"]["iou"] == metrics["iou_by_class"]["circle"]
    assert (tmp_path / "eval" / "confusion.png").is_file()


def test_segmentation_predict_writes_masks_and_a_table(
    segmentation_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for folder in ("x", "y"):  # the same file name twice: masks must not overwrite each other
        (tmp_path / "in" / folder).mkdir(parents=True)
        Image.new("RGB", (20, 12), (90, 30, 200)).save(tmp_path / "in" / folder / "shot.png")
    out = tmp_path / "out"
    argv = ["predict", str(segmentation_run), str(tmp_path / "in"), "--out", str(out)]
    assert main([*argv, "--runtime", "eager", "--device", "cpu", "--quiet"]) == 0
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [Path(row["mask"]).name for row in rows] == ["in_x_shot_mask.png", "in_y_shot_mask.png"]
    assert list(rows[0])[2:] == [f"{name}_share" for name in SHAPE_CLASSES]
    assert sum(float(rows[0][f"{name}_share"]) for name in SHAPE_CLASSES) == pytest.approx(1)
    assert Image.open(out / "in_x_shot_mask.png").size == (20, 12)  # the image's own size
    assert (out / "in_y_shot_overlay.png").is_file()
    assert main([*argv, "--runtime", "eager", "--device", "cpu", "--quiet"]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
