"""The Runs view's per-class table: every row named by its class, never by its index."""

from __future__ import annotations

import json
from pathlib import Path

from cnnzoo.app.runs import run_summary


def test_per_class_scores_in_class_order_take_the_checkpoint_class_names(
    tmp_path: Path, app_kit
) -> None:
    app_kit.write_run(tmp_path / "pets", classes=["cat", "dog"])
    metrics = {"model": "lenet5", "iou_per_class": [0.25, None]}
    (tmp_path / "pets" / "metrics.json").write_text(json.dumps(metrics))
    assert run_summary(tmp_path, "pets")["per_class"] == [
        {"class": "cat", "metric": "iou", "value": 0.25},
        {"class": "dog", "metric": "iou", "value": None},
    ]


def test_class_names_in_the_metrics_come_first_and_an_unnamed_class_keeps_its_index(
    tmp_path: Path, app_kit
) -> None:
    app_kit.write_run(tmp_path / "pets", classes=["cat", "dog"])
    metrics = {"iou_per_class": [0.5, 0.25, 0.125], "class_names": ["tabby", "collie"]}
    (tmp_path / "pets" / "metrics.json").write_text(json.dumps(metrics))
    rows = run_summary(tmp_path, "pets")["per_class"]
    assert [row["class"] for row in rows] == ["tabby", "collie", "2"]


def test_the_per_class_report_of_cnnzoo_eval_gives_named_scores_without_counts(
    tmp_path: Path, app_kit
) -> None:
    import torch

    from cnnzoo.evaluation.metrics import ConfusionMatrix
    from cnnzoo.evaluation.reports import REPORT_FILE, per_class_report

    run = app_kit.write_run(tmp_path / "pets", classes=["cat", "dog"])
    confusion = ConfusionMatrix(2)
    confusion.update(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]))
    report = per_class_report(confusion, ["cat", "dog"], "classification")
    (run / REPORT_FILE).write_text(json.dumps(report))
    rows = run_summary(tmp_path, "pets")["per_class"]
    assert {(row["class"], row["metric"]) for row in rows} == {
        (name, metric) for name in ("cat", "dog") for metric in ("precision", "recall", "f1")
    }
    assert {"class": "dog", "metric": "recall", "value": 2 / 3} in rows


def test_a_run_without_per_class_scores_has_an_empty_table(tmp_path: Path, app_kit) -> None:
    app_kit.write_run(tmp_path / "digits")
    assert run_summary(tmp_path, "digits")["per_class"] == []
