"""What ``cnnzoo eval`` and ``cnnzoo predict`` write: per-image predictions, per-class reports.

Both commands describe an image the same way (:func:`ranked_classes`) and
write the same table (:class:`PredictionTable`, ``predictions.csv``), so
predict's table over a test folder can be compared with eval's row by row.

The per-class report follows one confusion matrix
(:class:`~cnnzoo.engine.metrics.ConfusionMatrix`):

* classification: precision, recall, F1 and support per class, with their
  macro average (every class counts the same) and weighted average (by
  support), as scikit-learn's ``classification_report`` lays them out;
* segmentation: IoU and pixel accuracy per class (Long et al. 2015, FCN,
  sec. 5, arXiv:1411.4038), and the pixels of each class.

A class that is never the target or never predicted has an undefined
ratio; it is ``None`` in the JSON and ``-`` in the table, not a made-up 0,
and the macro average leaves it out (scikit-learn counts it as 0), as the
mean IoU leaves out a class absent from the split.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor

from cnnzoo.engine.metrics import ConfusionMatrix

PREDICTIONS_FILE = "predictions.csv"
REPORT_FILE = "report.json"
CONFUSION_FILE = "confusion.png"


# --- per image --------------------------------------------------------------------------


def ranked_classes(
    scores: Tensor, class_names: Sequence[str], topk: int
) -> list[list[dict[str, Any]]]:
    """The ``topk`` most probable classes of each row of (N, K) ``scores``, most probable first."""
    probabilities = scores.float().softmax(1)
    top = probabilities.topk(min(topk, probabilities.shape[1]), dim=1)
    return [
        [{"class": class_names[i], "probability": float(p)} for p, i in zip(values, indices)]
        for values, indices in zip(top.values.tolist(), top.indices.tolist())
    ]


def pixel_shares(scores: Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """The share of pixels predicted as each class, from (K, H, W) ``scores``."""
    counts = torch.bincount(scores.argmax(0).flatten(), minlength=len(class_names))
    total = max(int(counts.sum()), 1)
    return {name: int(count) / total for name, count in zip(class_names, counts.tolist())}


def table_columns(task: str, class_names: Sequence[str], topk: int) -> list[str]:
    """The header of ``predictions.csv``.

    Classification: ``path,prediction,probability``, then ``top2``,
    ``top2_probability`` and so on to ``topk``. Segmentation: ``path``, the
    mask file, and each class's share of the pixels (``NAME_share``).
    """
    if task == "classification":
        ranks = range(2, min(topk, len(class_names)) + 1)
        extra = [column for rank in ranks for column in (f"top{rank}", f"top{rank}_probability")]
        return ["path", "prediction", "probability", *extra]
    return ["path", "mask", *(f"{name}_share" for name in class_names)]


def table_row(result: dict[str, Any]) -> dict[str, Any]:
    """One image's prediction (as predict and eval describe it) as a row of the table."""
    row: dict[str, Any] = {"path": result["image"]}
    if "predictions" in result:
        first, *rest = result["predictions"]
        row.update(prediction=first["class"], probability=first["probability"])
        for rank, entry in enumerate(rest, start=2):
            row[f"top{rank}"] = entry["class"]
            row[f"top{rank}_probability"] = entry["probability"]
    else:
        row["mask"] = result["files"][0]
        row.update({f"{name}_share": share for name, share in result["shares"].items()})
    return {**row, **result.get("extra", {})}


class PredictionTable:
    """Rows written as they come, to CSV (``.csv``) or JSON lines (``.jsonl``), then closed."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream: TextIO = self.path.open("w", newline="")
        self._csv = None
        if self.path.suffix.lower() != ".jsonl":
            self._csv = csv.DictWriter(self._stream, self.columns, extrasaction="ignore")
            self._csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow(row)
        else:
            self._stream.write(json.dumps({key: row.get(key) for key in self.columns}) + "\n")

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> PredictionTable:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


# --- per class --------------------------------------------------------------------------


def per_class_report(
    confusion: ConfusionMatrix, class_names: Sequence[str], task: str
) -> dict[str, Any]:
    """Per-class metrics by class name, and their averages (see the module's description)."""
    matrix = confusion.matrix.double()
    true_positive = matrix.diagonal()
    support = matrix.sum(1)
    if task == "classification":
        precision = true_positive / matrix.sum(0)
        recall = true_positive / support
        f1 = 2 * precision * recall / (precision + recall)
        columns = {"precision": precision, "recall": recall, "f1": f1}
        count_name = "support"
    else:
        columns = {"iou": confusion.iou(), "accuracy": confusion.class_accuracy()}
        count_name = "pixels"
    classes = {
        name: {
            **{key: _defined(values[index]) for key, values in columns.items()},
            count_name: int(support[index]),
        }
        for index, name in enumerate(class_names)
    }
    weights = support / support.sum().clamp(min=1)
    averages = {
        "macro avg": {key: _defined(values.nanmean()) for key, values in columns.items()},
        "weighted avg": {
            key: _defined((values.nan_to_num(0.0) * weights).sum())
            for key, values in columns.items()
        },
    }
    for average in averages.values():
        average[count_name] = int(support.sum())
    return {"task": task, "classes": classes, "averages": averages}


def format_report(report: dict[str, Any]) -> str:
    """The report as an aligned table: one line per class, then the averages."""
    rows = {**report["classes"], **report["averages"]}
    columns = list(next(iter(rows.values())))
    width = max(len("class"), *(len(name) for name in rows))
    lines = [f"{'class':<{width}}  " + "  ".join(f"{c:>9}" for c in columns)]
    for name, values in rows.items():
        if name in report["averages"] and name == next(iter(report["averages"])):
            lines.append("")
        cells = [_cell(values[column]) for column in columns]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell:>9}" for cell in cells))
    return "\n".join(lines)


def write_report(
    report: dict[str, Any],
    confusion: ConfusionMatrix,
    class_names: Sequence[str],
    out_dir: Path,
    title: str,
) -> list[Path]:
    """``report.json`` and ``confusion.png`` in ``out_dir``; the paths written."""
    from cnnzoo.engine.plots import plot_confusion

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion(confusion.matrix, list(class_names), out_dir / CONFUSION_FILE, title)
    return [out_dir / REPORT_FILE, out_dir / CONFUSION_FILE]


def _defined(value: Tensor | float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"
