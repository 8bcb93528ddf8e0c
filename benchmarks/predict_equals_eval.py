"""``cnnzoo predict`` over a test folder equals ``cnnzoo eval --split test``, image for image.

Writes a seeded ``train/ test/`` folder of 5,000 JPEGs (``cnnzoo make-folder``),
trains a tiny network on it for one epoch, then runs ``predict`` over the
test images and ``eval --out`` on the same run and runtime, and compares
their ``predictions.csv`` row by row (the same file, the same class, the
probability within 1e-5). Prints one JSON line: the images, how many
predictions match, each command's images/s (the whole command, start-up
included) and the machine's load while they ran.

    PYTHONPATH=. python benchmarks/predict_equals_eval.py --work /tmp/predict-check
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from cnnzoo.measure.load import LoadMeter


def cnnzoo(*arguments: str) -> float:
    """Run one cnnzoo command; its wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnzoo", *arguments], check=True)
    return time.perf_counter() - start


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as stream:
        return {row["path"]: row for row in csv.DictReader(stream)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a new folder for all files")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", default="64,64", help="H,W of the images written")
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--data-mode", default="auto", choices=("auto", "memory", "stream"))
    parser.add_argument("--runtime", default="eager")
    args = parser.parse_args()
    folder, run = args.work / "folder", args.work / f"run-{args.data_mode}"
    if not folder.is_dir():
        cnnzoo("make-folder", str(folder), "--images", str(args.images), "--classes", "10",
               "--size", args.size, "--splits", "train,test", "--quiet")  # fmt: skip
    cnnzoo("train", args.model, "--data", f"folder:{folder}", "--data-mode", args.data_mode,
           "--epochs", "1", "--out", str(run), "--no-plots", "--quiet", "--force")  # fmt: skip
    same = ["--runtime", args.runtime, "--force", "--quiet"]
    with LoadMeter() as meter:
        predict = cnnzoo("predict", str(run), str(folder / "test"), "--out", str(run / "p"), *same)
        evaluate = cnnzoo("eval", str(run), "--out", str(run / "e"), *same)
    predicted, evaluated = rows(run / "p" / "predictions.csv"), rows(run / "e" / "predictions.csv")
    matching = sum(
        path in evaluated
        and row["prediction"] == evaluated[path]["prediction"]
        and abs(float(row["probability"]) - float(evaluated[path]["probability"])) <= 1e-5
        for path, row in predicted.items()
    )
    print(json.dumps({
        "images": len(evaluated), "predicted": len(predicted), "matching": matching,
        "data_mode": args.data_mode, "runtime": args.runtime,
        "predict_images_per_second": round(len(predicted) / predict, 1),
        "eval_images_per_second": round(len(evaluated) / evaluate, 1),
        "load": meter.load.describe(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
