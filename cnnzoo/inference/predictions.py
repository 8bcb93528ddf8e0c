"""What ``cnnzoo eval`` and ``cnnzoo predict`` write per image: the ranked classes or
pixel shares, in one table (``predictions.csv``), so that predict's table over a test
folder can be compared with eval's row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor

PREDICTIONS_FILE = "predictions.csv"


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
