"""Per-class reports and the prediction table eval and predict share."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from cnnzoo.evaluation import reports
from cnnzoo.evaluation.metrics import ConfusionMatrix
from cnnzoo.inference import predictions


def _confusion(rows: list[list[int]]) -> ConfusionMatrix:
    confusion = ConfusionMatrix(len(rows))
    confusion.matrix = torch.tensor(rows)
    return confusion


def test_classification_report_gives_precision_recall_f1_and_support_by_name() -> None:
    # true cat: 8 right, 2 called dog; true dog: 4 right, 1 called cat; no bird at all.
    confusion = _confusion([[8, 2, 0], [1, 4, 0], [0, 0, 0]])
    report = reports.per_class_report(confusion, ["cat", "dog", "bird"], "classification")
    cat = report["classes"]["cat"]
    assert cat["precision"] == pytest.approx(8 / 9) and cat["recall"] == pytest.approx(0.8)
    assert cat["f1"] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8)) and cat["support"] == 10
    assert report["classes"]["bird"] == {"precision": None, "recall": None, "f1": None,
                                         "support": 0}  # fmt: skip
    macro, weighted = report["averages"]["macro avg"], report["averages"]["weighted avg"]
    assert macro["recall"] == pytest.approx((0.8 + 0.8) / 2)
    assert weighted["precision"] == pytest.approx((8 / 9 * 10 + 4 / 6 * 5) / 15)
    assert macro["support"] == weighted["support"] == 15
    json.dumps(report, allow_nan=False)  # undefined ratios are null, not NaN


def test_segmentation_report_gives_iou_and_accuracy_by_name() -> None:
    report = reports.per_class_report(_confusion([[6, 2], [0, 2]]), ["road", "car"], "segmentation")
    assert report["classes"]["road"] == {"iou": 0.75, "accuracy": 0.75, "pixels": 8}
    assert report["classes"]["car"]["iou"] == pytest.approx(0.5)


def test_the_table_is_aligned_and_written_with_the_confusion_picture(tmp_path: Path) -> None:
    confusion = _confusion([[8, 2], [1, 4]])
    report = reports.per_class_report(confusion, ["cat", "a-long-name"], "classification")
    lines = reports.format_report(report).splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert len({len(line) for line in lines if line}) == 1  # every row as wide as the header
    assert any(line.startswith("weighted avg") for line in lines)
    written = reports.write_report(
        report, confusion, ["cat", "a-long-name"], tmp_path / "r", "title"
    )
    assert [p.name for p in written] == ["report.json", "confusion.png"]
    assert json.loads(written[0].read_text()) == report


def test_a_classification_row_holds_the_ranked_classes(tmp_path: Path) -> None:
    scores = torch.tensor([[0.0, 2.0, 1.0]])
    (ranked,) = predictions.ranked_classes(scores, ["a", "b", "c"], topk=2)
    assert [entry["class"] for entry in ranked] == ["b", "c"]
    columns = predictions.table_columns("classification", ["a", "b", "c"], topk=5)
    assert columns == ["path", "prediction", "probability", "top2", "top2_probability",
                       "top3", "top3_probability"]  # fmt: skip
    row = predictions.table_row({"image": "x.png", "predictions": ranked})
    assert row["prediction"] == "b" and row["top2"] == "c"
    for name in ("t.csv", "t.jsonl"):
        with predictions.PredictionTable(tmp_path / name, columns[:5]) as table:
            table.write(row)
    (read,) = csv.DictReader((tmp_path / "t.csv").open())
    assert read["path"] == "x.png" and float(read["probability"]) == pytest.approx(
        ranked[0]["probability"]
    )
    assert json.loads((tmp_path / "t.jsonl").read_text())["top2"] == "c"


def test_a_segmentation_row_holds_the_mask_and_pixel_shares() -> None:
    scores = torch.zeros(2, 2, 2)
    scores[1, 0] = 1.0  # the top row is class 1
    shares = predictions.pixel_shares(scores, ["sky", "sea"])
    assert shares == {"sky": 0.5, "sea": 0.5}
    row = predictions.table_row(
        {"image": "x.png", "files": ["x_mask.png", "x_overlay.png"], "shares": shares}
    )
    assert list(row) == predictions.table_columns("segmentation", ["sky", "sea"], topk=5)
