"""What ``cnnzoo eval`` and ``cnnzoo predict`` write: per-image predictions, per-class reports.

Both commands describe an image the same way (:func:`ranked_classes`) and
write the same table (:class:`PredictionTable`, ``predictions.csv``), so
predict's table over a test folder can be compared with eval's row by row.

The per-class report follows one confusion matrix
(:class:`~cnnzoo.evaluation.metrics.ConfusionMatrix`):

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

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from cnnzoo.evaluation.metrics import ConfusionMatrix

REPORT_FILE = "report.json"
CONFUSION_FILE = "confusion.png"


# --- per image --------------------------------------------------------------------------


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
    from cnnzoo.runs.plots import plot_confusion

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
