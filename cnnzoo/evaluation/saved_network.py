"""``cnnzoo eval``: a saved network's metrics and per-class report on a split of its own
data or of another data set with the same classes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from cnnzoo.data.base import DataSplits, load_data, source_name
from cnnzoo.data.protocol import Split
from cnnzoo.data.sources.class_folders import split_folder
from cnnzoo.data.streaming import StreamedImages, list_class_files
from cnnzoo.device.placement import pick_device
from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.evaluate import EvalOptions, evaluate
from cnnzoo.evaluation.losses import build_loss
from cnnzoo.evaluation.reports import per_class_report, write_report
from cnnzoo.inference.batching import ForwardMaker, dataset_batch_size
from cnnzoo.inference.predict_files import job_forward
from cnnzoo.inference.predictions import (
    PREDICTIONS_FILE,
    PredictionTable,
    ranked_classes,
    table_columns,
    table_row,
)
from cnnzoo.inference.predictor import Predictor
from cnnzoo.models.registry import get_model_entry
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.plan import check_task, data_request


@dataclass
class Evaluation:
    """What ``cnnzoo eval`` reports: the metrics and the per-class table (evaluation.reports)."""

    metrics: dict[str, Any]
    report: dict[str, Any]


@dataclass(frozen=True)
class EvalData:
    """Which images ``cnnzoo eval`` scores a saved network on."""

    name: str | None = None  # a data set with the network's classes; None: the one it trained on
    split: str = "test"  # "test" or "val"
    data_dir: str | None = None  # where that data set lives; None: the recipe's folder
    download: bool = False  # fetch the data set when it is missing; never implicit


def evaluate_checkpoint(
    location: str | Path,
    data: EvalData | None = None,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    make_forward: ForwardMaker | None = None,
    out_dir: Path | None = None,
    topk: int = 5,
) -> Evaluation:
    """Metrics of a saved network on a split of its training data or of another data set.

    ``data`` names that split (default: the test split of the data it trained on).
    ``make_forward`` chooses what runs the batches (default: the model
    itself, see :func:`job_forward`). With ``out_dir``, ``predictions.csv`` (classification:
    the columns ``cnnzoo predict`` writes, plus the true ``label``),
    ``report.json`` and ``confusion.png`` are written there.
    """
    target_device = pick_device(device)
    loaded = Predictor.from_checkpoint(location, target_device)
    checkpoint = _checkpoint_of(loaded)
    config = checkpoint.recipe
    data = data or EvalData()
    data = replace(data, name=data.name or config.data)
    splits, dataset = _evaluation_split(loaded, data)
    if batch_size is None:
        options = {"device": target_device, "precision": config.precision}
        batch_size = dataset_batch_size(loaded.model, dataset, config.eval_memory_mb, **options)
    fixed_size = loaded.task == "classification"
    forward = job_forward(loaded, dataset, batch_size, fixed_size, make_forward)
    table, on_scores = None, None
    if out_dir is not None and loaded.task == "classification":
        paths = split_paths(dataset, splits, data.name, data.split)
        columns = [*table_columns(loaded.task, loaded.class_names, topk), "label"]
        table = PredictionTable(out_dir / PREDICTIONS_FILE, columns)
        on_scores = _table_writer(table, iter(paths), loaded.class_names, topk)
    try:
        tracker = evaluate(
            loaded.model,
            dataset,
            task=loaded.task,
            num_classes=len(loaded.class_names),
            loss_fn=build_loss(config.loss, ignore_index=splits.ignore_index),
            ignore_index=splits.ignore_index,
            options=EvalOptions(
                batch_size=batch_size,
                memory_mb=config.eval_memory_mb,
                device=target_device,
                precision=config.precision,
                forward=forward,
                on_scores=on_scores,
            ),
        )
    finally:
        if table is not None:
            table.close()
    summary = tracker.summary()
    if "iou_per_class" in summary:  # the list stays for readers of earlier outputs
        summary["iou_by_class"] = dict(zip(loaded.class_names, summary["iou_per_class"]))
    report = per_class_report(tracker.confusion, loaded.class_names, loaded.task)
    if out_dir is not None:
        title = f"{checkpoint.model_name} on {data.name} ({data.split})"
        write_report(report, tracker.confusion, loaded.class_names, out_dir, title)
    metrics = {
        "model": checkpoint.model_name,
        "data": data.name,
        "split": data.split,
        **summary,
        "epochs": checkpoint.epoch,
        "checkpoint": loaded.source,
    }
    return Evaluation(metrics, report)


def _checkpoint_of(loaded: Predictor) -> Checkpoint:
    """The checkpoint a predictor read (from_checkpoint always reads one)."""
    if loaded.checkpoint is None:
        raise CnnzooError(f"{loaded.source} is not a checkpoint; evaluate a run or a .pt file")
    return loaded.checkpoint


def _evaluation_split(loaded: Predictor, data: EvalData) -> tuple[DataSplits, Split]:
    """The data set's splits and the one to evaluate, fed as the network was trained."""
    checkpoint = _checkpoint_of(loaded)
    config = checkpoint.recipe
    data_name, split = data.name or config.data, data.split
    data_dir = data.data_dir or config.data_dir
    splits = load_data(
        data_name,
        replace(
            data_request(config, checkpoint.image_size, checkpoint.in_channels),
            data_dir=Path(data_dir) if data_dir else None,
            download=data.download,
            augment="none",
        ),
    )
    check_task(get_model_entry(checkpoint.model_name), splits, data_name)
    if list(splits.class_names) != loaded.class_names:
        raise CnnzooError(
            f"{data_name!r} has classes {_short(splits.class_names)} but the model was trained "
            f"on {_short(loaded.class_names)}; evaluate on data with the same classes"
        )
    dataset = splits.test if split == "test" else splits.val
    if dataset is None:
        other = "val" if split == "test" else "test"
        raise CnnzooError(f"{data_name!r} has no {split} split; use --split {other}")
    if checkpoint.normalization is not None:
        dataset.normalization = checkpoint.normalization  # feed the images as in training
    return splits, dataset


def split_paths(dataset: Split, splits: DataSplits, data_name: str, split: str) -> list[str]:
    """The file of each image of ``dataset``, in order; ``SPLIT[INDEX]`` where there is none.

    A streamed folder keeps its paths; a folder held in memory is listed
    again (less the files skipped when it was decoded); the built-in sets
    have no files.
    """
    if isinstance(dataset, StreamedImages):
        return [os.fsdecode(path) for path in dataset.samples.paths]
    folder = None
    if source_name(data_name) == "folder":
        folder = split_folder(Path(data_name.partition(":")[2]).expanduser(), split)
    if folder is not None:
        skipped = {image.path for image in splits.skipped_images}
        files, _ = list_class_files(folder, list(splits.class_names))
        paths = [str(path) for path in files if str(path) not in skipped]
        if len(paths) == len(dataset):
            return paths
    return [f"{split}[{index}]" for index in range(len(dataset))]


def _table_writer(
    table: PredictionTable, paths: Iterator[str], class_names: list[str], topk: int
) -> Callable[[Tensor, Tensor], None]:
    """Writes each evaluated image's row: its path, ranked classes and true label."""

    def write(scores: Tensor, targets: Tensor) -> None:
        for ranked, target in zip(ranked_classes(scores, class_names, topk), targets.tolist()):
            result = {"image": next(paths), "predictions": ranked}
            table.write({**table_row(result), "label": class_names[target]})

    return write


def _short(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)})"
