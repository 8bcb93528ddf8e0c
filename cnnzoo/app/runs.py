"""Run directories under ``--runs``: found, read and compared, never reached outside it.

A run is named by its path relative to the runs folder (``demo``,
``sweep/resnet20``). :func:`resolve_run` is the one gate every request about a
run passes: it refuses absolute paths and ``..`` in any spelling (the page's
requests are URL-decoded before they arrive, so ``%2e%2e`` is ``..`` here),
then resolves symbolic links and refuses any result outside the folder.
A run still training is read as it is: ``log.csv`` grows by one row per epoch
and its modification time tells the page when to read it again.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path, PurePosixPath
from typing import Any

from cnnzoo.errors import CnnzooError

RUN_MARKERS = ("config.yaml", "log.csv", "metrics.json", "best.pt", "last.pt")
RUN_PICTURES = ("curves.png", "confusion.png", "grad_norms.png")  # the files a page may show
REPORT_COUNTS = ("support", "pixels")  # the report's counts, not scores
SEARCH_DEPTH = 3  # run folders are found this many levels below --runs at most


def resolve_run(root: Path, name: str) -> Path:
    """The run directory ``name`` under ``root``, or an error when it lies elsewhere."""
    if not name or "\x00" in name or "\\" in name:
        raise CnnzooError(f"{name!r} is not a run name; choose a run from the list")
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise CnnzooError(f"{name!r} lies outside the runs folder; only runs under it are shown")
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise CnnzooError(f"{name!r} lies outside the runs folder; only runs under it are shown")
    if not path.is_dir() or not any((path / marker).exists() for marker in RUN_MARKERS):
        raise CnnzooError(f"there is no run {name!r} under the runs folder")
    return path


def list_runs(root: Path) -> list[str]:
    """Names of the run directories under ``root`` (those holding a run's files)."""
    if not root.is_dir():
        return []
    base = root.resolve()
    found = []
    for path in sorted(_folders(base, SEARCH_DEPTH)):
        if any((path / marker).is_file() for marker in RUN_MARKERS):
            found.append(path.relative_to(base).as_posix())
    return found


def _folders(folder: Path, depth: int) -> list[Path]:
    if depth == 0:
        return []
    children = [c for c in folder.iterdir() if c.is_dir() and not c.is_symlink()]
    return children + [found for child in children for found in _folders(child, depth - 1)]


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of ``log.csv``, numbers as floats (an empty cell as None)."""
    if not path.is_file():
        return []
    with path.open(newline="") as stream:
        return [
            {key: _number(value) for key, value in row.items() if key is not None}
            for row in csv.DictReader(stream)
        ]


def _number(text: str | None) -> float | str | None:
    if text in (None, ""):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def run_summary(root: Path, name: str) -> dict[str, Any]:
    """What the Runs view shows of one run: recipe, metrics, curves' data and pictures."""
    path = resolve_run(root, name)
    metrics = _json_file(path / "metrics.json")
    log = path / "log.csv"
    config_text = (path / "config.yaml").read_text() if (path / "config.yaml").is_file() else ""
    return {
        "name": name,
        "recipe": config_text,
        "metrics": metrics,
        "history": read_history(log),
        "log_mtime": log.stat().st_mtime if log.is_file() else None,
        # metrics.json is written once the run has finished; until then it is training.
        "finished": metrics is not None,
        "pictures": [p for p in RUN_PICTURES if (path / p).is_file()],
        "per_class": _per_class(path, metrics),
    }


def _json_file(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CnnzooError(f"{path.name} of this run is not valid JSON ({error})") from None


def _per_class(path: Path, metrics: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per-class scores of a run, each named by its class.

    ``cnnzoo eval --out RUN`` leaves the per-class report
    (:func:`~cnnzoo.evaluation.reports.per_class_report`) in ``report.json``,
    keyed by class name; without one, the lists ``metrics.json`` holds (IoU
    per class for segmentation) are in class order, named by the metrics'
    ``class_names`` or else by the run's checkpoint.
    """
    from cnnzoo.evaluation.reports import REPORT_FILE

    report = _json_file(path / REPORT_FILE)
    if report and isinstance(report.get("classes"), dict):
        return [
            {"class": name, "metric": metric, "value": value}
            for name, scores in report["classes"].items()
            for metric, value in scores.items()
            if metric not in REPORT_COUNTS
        ]
    if not metrics:
        return []
    lists = [(key, metrics.get(key)) for key in ("iou_per_class", "accuracy_per_class")]
    lists = [(key, values) for key, values in lists if isinstance(values, list) and values]
    if not lists:
        return []
    names = metrics.get("class_names") or _checkpoint_class_names(path)
    rows = []
    for key, values in lists:
        for index, value in enumerate(values):
            label = names[index] if index < len(names) else str(index)
            rows.append({"class": label, "metric": key.replace("_per_class", ""), "value": value})
    return rows


def _checkpoint_class_names(path: Path) -> list[str]:
    """The class names the run's checkpoint holds; none when it has no readable checkpoint."""
    for name in ("best.pt", "last.pt"):
        checkpoint = path / name
        if checkpoint.is_file():
            return list(_class_names_of(checkpoint, checkpoint.stat().st_mtime_ns))
    return []


@functools.lru_cache(maxsize=32)
def _class_names_of(checkpoint: Path, mtime_ns: int) -> tuple[str, ...]:
    """Read once per version of the file (``mtime_ns``): the page asks for a run every 2 s."""
    from cnnzoo.runs.checkpoint import Checkpoint

    try:
        return tuple(Checkpoint.load(checkpoint, registered=False).class_names)
    except CnnzooError:
        return ()


def run_picture(root: Path, name: str, picture: str) -> Path:
    """A picture a run wrote (curves, confusion matrix), by its file name."""
    if picture not in RUN_PICTURES:
        raise CnnzooError(f"runs show only {', '.join(RUN_PICTURES)}, not {picture!r}")
    path = resolve_run(root, name) / picture
    if not path.is_file():
        raise CnnzooError(f"run {name!r} has no {picture}")
    return path


def compare_runs(root: Path, names: list[str]) -> dict[str, Any]:
    """Selected runs side by side, as ``cnnzoo compare --runs`` gives them (without timing)."""
    from cnnzoo.analysis.comparison import compare_models, format_comparison

    if len(names) < 2:
        raise CnnzooError("select at least two runs to compare")
    paths = [resolve_run(root, name) for name in names]
    rows = compare_models(runs=paths, latency=False)
    return {
        "table": format_comparison(rows),
        "rows": [
            {
                "run": name,
                "label": row.label,
                "params": row.params,
                "macs": row.macs,
                "metric": row.metric,
                "score": row.score,
                "epochs": row.epochs,
                "train_seconds": row.train_seconds,
            }
            for name, row in zip(names, rows)
        ],
    }
