"""Using a trained network: rebuild it from a checkpoint, evaluate it, predict on image files.

A checkpoint records the model name, its classes, input channels and size,
and the normalisation of its training images, so a model is rebuilt and fed
exactly as it was trained, on the same data or another data set with the
same classes.

Prediction prepares each file as evaluation of the run prepares its test
images (:func:`checkpoint_preprocessing`) and batches them as evaluation does, so that
``cnnzoo predict`` over a test folder and ``cnnzoo eval`` agree image for
image, and both describe an image the same way (:mod:`cnnzoo.engine.reports`).
What runs the batches is a parameter (:data:`~cnnzoo.engine.evaluate.ForwardMaker`):
the model itself, or the same weights compiled or exported, chosen above
the engine (``cnnzoo.speed.runners``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from cnnzoo.data import DataSplits, Split, load_data, source_name
from cnnzoo.data.bad_images import (
    BadImageLog,
    first_readable_shape,
    readable_batches,
    readable_loader,
)
from cnnzoo.data.classification import split_folder
from cnnzoo.data.files import ImageFiles, unique_stems
from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.mask_pictures import save_prediction
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.data.streaming import StreamedImages, default_workers, list_class_files
from cnnzoo.engine.checkpoint import load_checkpoint, load_weights
from cnnzoo.engine.config import EVAL_MEMORY_MB, config_from_dict
from cnnzoo.engine.evaluate import (
    Forward,
    ForwardMaker,
    dataset_batch_size,
    evaluate,
    model_forward,
)
from cnnzoo.engine.losses import build_loss
from cnnzoo.engine.pairing import check_task, data_request
from cnnzoo.engine.reports import (
    PREDICTIONS_FILE,
    PredictionTable,
    per_class_report,
    pixel_shares,
    ranked_classes,
    table_columns,
    table_row,
    write_report,
)
from cnnzoo.engine.runtime import autocast, pick_device
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress_bar
from cnnzoo.registry import create_model, get_model_entry


@dataclass
class LoadedModel:
    """A network rebuilt from a checkpoint, in evaluation mode, with how to feed it."""

    model: nn.Module
    checkpoint: dict[str, Any]
    path: Path

    @property
    def class_names(self) -> list[str]:
        return list(self.checkpoint["class_names"])

    @property
    def task(self) -> str:
        return self.checkpoint["task"]

    @property
    def preprocessing(self) -> Preprocessing:
        return checkpoint_preprocessing(self.checkpoint)

    @property
    def normalization(self) -> Normalization | None:
        return self.preprocessing.normalization


def checkpoint_path(location: str | Path) -> Path:
    """A run directory's best.pt (or last.pt), or the file itself."""
    path = Path(location)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise CnnzooError(f"{path} holds no best.pt or last.pt; is it a run directory?")
    if not path.is_file():
        raise CnnzooError(f"{path} does not exist; give a run directory or a checkpoint file")
    return path


def load_model(location: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the network saved at ``location`` (run directory or .pt file)."""
    path = checkpoint_path(location)
    checkpoint = load_checkpoint(path)
    options = config_from_dict(checkpoint["config"]).model_options
    network = (checkpoint["model_name"], checkpoint["class_names"], checkpoint["in_channels"])
    model = rebuild_network(*network, options, checkpoint["model"], path)
    return LoadedModel(model.to(device).eval(), checkpoint, path)


def rebuild_network(
    name: str,
    class_names: Sequence[str],
    in_channels: int,
    options: dict[str, Any],
    weights: dict[str, Tensor],
    source: Path,
) -> nn.Module:
    """The registered network ``name`` holding ``weights`` (read from ``source``).

    Built without the pretrained weights a run may have started from
    (:func:`own_options`): its trained weights replace them, so loading a
    run never reads the torch hub cache nor downloads anything.
    """
    get_model_entry(name)  # a clear error if the model is unknown here
    model = create_model(
        name, num_classes=len(class_names), in_channels=in_channels, **own_options(options)
    )
    load_weights(model, {"model_name": name, "class_names": class_names, "model": weights}, source)
    return model


def own_options(options: dict[str, Any]) -> dict[str, Any]:
    """A run's model options without ``pretrained`` (an older way to ask for the weights)."""
    return {key: value for key, value in options.items() if key != "pretrained"}


@dataclass
class Evaluation:
    """What ``cnnzoo eval`` reports: the metrics and the per-class table (engine.reports)."""

    metrics: dict[str, Any]
    report: dict[str, Any]


def evaluate_checkpoint(
    location: str | Path,
    *,
    data: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    download: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
    make_forward: ForwardMaker | None = None,
    out_dir: Path | None = None,
    topk: int = 5,
) -> Evaluation:
    """Metrics of a saved network on a split of its training data or of another data set.

    ``make_forward`` chooses what runs the batches (default: the model
    itself, see :func:`job_forward`). With ``out_dir``, ``predictions.csv`` (classification:
    the columns ``cnnzoo predict`` writes, plus the true ``label``),
    ``report.json`` and ``confusion.png`` are written there.
    """
    target_device = pick_device(device)
    loaded = load_model(location, target_device)
    checkpoint, config = loaded.checkpoint, config_from_dict(loaded.checkpoint["config"])
    data_name = data or config.data
    splits, dataset = _evaluation_split(loaded, data_name, split, data_dir, download)
    if batch_size is None:
        options = {"device": target_device, "precision": config.precision}
        batch_size = dataset_batch_size(loaded.model, dataset, config.eval_memory_mb, **options)
    fixed_size = loaded.task == "classification"
    forward = job_forward(loaded, dataset, batch_size, fixed_size, make_forward)
    table, on_scores = None, None
    if out_dir is not None and loaded.task == "classification":
        paths = split_paths(dataset, splits, data_name, split)
        columns = [*table_columns(loaded.task, loaded.class_names, topk), "label"]
        table = PredictionTable(out_dir / PREDICTIONS_FILE, columns)
        on_scores = _table_writer(table, iter(paths), loaded.class_names, topk)
    try:
        tracker = evaluate(
            loaded.model, dataset, task=loaded.task, num_classes=len(loaded.class_names),
            loss_fn=build_loss(config.loss, ignore_index=splits.ignore_index),
            ignore_index=splits.ignore_index, batch_size=batch_size,
            memory_mb=config.eval_memory_mb, device=target_device, precision=config.precision,
            forward=forward, on_scores=on_scores,
        )  # fmt: skip
    finally:
        if table is not None:
            table.close()
    summary = tracker.summary()
    if "iou_per_class" in summary:  # the list stays for readers of earlier outputs
        summary["iou_by_class"] = dict(zip(loaded.class_names, summary["iou_per_class"]))
    report = per_class_report(tracker.confusion, loaded.class_names, loaded.task)
    if out_dir is not None:
        title = f"{checkpoint['model_name']} on {data_name} ({split})"
        write_report(report, tracker.confusion, loaded.class_names, out_dir, title)
    metrics = {
        "model": checkpoint["model_name"], "data": data_name, "split": split, **summary,
        "epochs": checkpoint["epoch"], "checkpoint": str(loaded.path),
    }  # fmt: skip
    return Evaluation(metrics, report)


def _evaluation_split(
    loaded: LoadedModel, data_name: str, split: str, data_dir: str | None, download: bool
) -> tuple[DataSplits, Split]:
    """The data set's splits and the one to evaluate, fed as the network was trained."""
    checkpoint = loaded.checkpoint
    config = config_from_dict(checkpoint["config"])
    splits = load_data(
        data_name,
        replace(
            data_request(config, tuple(checkpoint["image_size"]), checkpoint["in_channels"]),
            data_dir=Path(data_dir or config.data_dir) if (data_dir or config.data_dir) else None,
            download=download,
            augment="none",
        ),
    )
    check_task(get_model_entry(checkpoint["model_name"]), splits, data_name)
    if list(splits.class_names) != loaded.class_names:
        raise CnnzooError(
            f"{data_name!r} has classes {_short(splits.class_names)} but the model was trained "
            f"on {_short(loaded.class_names)}; evaluate on data with the same classes"
        )
    dataset = splits.test if split == "test" else splits.val
    if dataset is None:
        raise CnnzooError(f"{data_name!r} has no test split; use --split val")
    if loaded.normalization is not None:
        dataset.normalization = loaded.normalization  # feed the images as in training
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


def checkpoint_preprocessing(checkpoint: dict[str, Any]) -> Preprocessing:
    """How the run of ``checkpoint`` prepared images for evaluation, and so for prediction.

    The trainer records it
    (:func:`~cnnzoo.data.preprocessing.evaluation_preprocessing`); a
    checkpoint written before it did is read from its fields: segmentation at
    each image's own size, classification resized to the training size, the
    centre crop of ``crop_ratio`` only where the run asked to stream.
    """
    if checkpoint.get("preprocessing") is not None:
        return Preprocessing.from_dict(checkpoint["preprocessing"])
    channels = checkpoint["in_channels"]
    stats = checkpoint.get("normalization")
    normalization = Normalization(tuple(stats["mean"]), tuple(stats["std"])) if stats else None
    if checkpoint["task"] != "classification":
        return Preprocessing(channels, None, None, normalization)
    size = tuple(checkpoint["image_size"])
    config = config_from_dict(checkpoint["config"]) if "config" in checkpoint else None
    streamed = (
        config is not None and config.data_mode == "stream" and source_name(config.data) == "folder"
    )
    crop_ratio = data_request(config, size, channels).crop_ratio if streamed else None
    return Preprocessing(channels, size, crop_ratio, normalization)


def predict_files(
    loaded: LoadedModel,
    paths: Sequence[Path],
    *,
    topk: int = 5,
    out_dir: Path | None = None,
    make_forward: ForwardMaker | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    bad_images: BadImageLog | None = None,
) -> Iterator[dict[str, Any]]:
    """Each readable image's prediction, in order, as the batches are computed.

    Classification: the top-k classes with their probabilities
    (``{"image", "predictions"}``). Segmentation: ``STEM_mask.png`` and
    ``STEM_overlay.png`` written into ``out_dir`` (``{"image", "files",
    "shares"}``), one image per step as each keeps its own size. Images are
    prepared as :attr:`LoadedModel.preprocessing` says and batched as evaluation batches
    (``batch_size`` None: what the run's ``eval_memory_mb`` allows), read by
    ``workers`` DataLoader processes (None: one per core when there is more
    than one batch), and run by ``make_forward``'s choice (:func:`job_forward`).
    A file that cannot be decoded goes to ``bad_images`` (default: skipped).
    A bar counts the images where bars are on.
    """
    recipe = loaded.preprocessing
    files = ImageFiles(paths, recipe)
    device = next(loaded.model.parameters()).device
    precision = loaded.checkpoint.get("config", {}).get("precision", "fp32")
    if recipe.size is None:
        batch_size = 1
    elif batch_size is None:
        memory_mb = loaded.checkpoint.get("config", {}).get("eval_memory_mb", EVAL_MEMORY_MB)
        options = {"device": device, "precision": precision}
        batch_size = dataset_batch_size(loaded.model, files, memory_mb, **options)
    forward = job_forward(loaded, files, batch_size, recipe.size is not None, make_forward)
    if workers is None:
        workers = default_workers() if len(paths) > batch_size else 0
    loader = readable_loader(
        files, batch_size=batch_size, num_workers=workers,
        pin_memory=device.type == "cuda",
    )  # fmt: skip
    stems = unique_stems(paths)
    log = bad_images or BadImageLog(skip=True)
    with progress_bar(len(paths), "predicting", unit="image") as bar:
        for images, indices in readable_batches(loader, log):
            model_input = recipe.normalised(images).to(device)
            with torch.no_grad(), autocast(device, precision):  # as evaluate() runs a runtime
                scores = forward(model_input).float().cpu()
            for index, image_scores, pixels in zip(indices.tolist(), scores, images):
                path, stem = paths[index], stems[index]
                yield _prediction(loaded, path, image_scores, pixels, topk, out_dir, stem)
            bar.update(len(indices))


def _prediction(
    loaded: LoadedModel,
    path: Path,
    scores: Tensor,
    pixels: Tensor,
    topk: int,
    out_dir: Path | None,
    stem: str,
) -> dict[str, Any]:
    """One image's result: its ranked classes, or its mask and overlay, written, and shares."""
    if loaded.task == "classification":
        ranked = ranked_classes(scores[None], loaded.class_names, topk)[0]
        return {"image": str(path), "predictions": ranked}
    written = save_prediction(pixels.float().div(255), scores, loaded.class_names, out_dir, stem)
    shares = pixel_shares(scores, loaded.class_names)
    return {"image": str(path), "files": [str(p) for p in written], "shares": shares}


def predict_images(
    loaded: LoadedModel, paths: list[Path], topk: int = 5, out_dir: Path | None = None
) -> list[dict[str, Any]]:
    """:func:`predict_files` of ``paths`` at once, in this process (masks into ``out_dir``)."""
    return list(
        predict_files(loaded, paths, topk=topk, out_dir=out_dir or Path("predictions"), workers=0)
    )


def job_forward(
    loaded: LoadedModel,
    dataset: Dataset,
    batch_size: int,
    fixed_size: bool,
    make_forward: ForwardMaker | None,
) -> Forward:
    """What runs ``dataset``'s batches: ``make_forward``'s choice, or the model itself.

    The example it is given is a batch of ``batch_size`` images shaped as
    the first image that decodes, so a runtime that specialises to its
    input (a compiled graph, an ONNX graph) is set up for the batches it will
    see; ``fixed_size`` says whether every image has that shape.
    """
    shape = first_readable_shape(dataset)
    if make_forward is None or shape is None:
        return model_forward(loaded.model)
    device = next(loaded.model.parameters()).device
    example = torch.zeros(min(batch_size, len(dataset)), *shape, device=device)
    return make_forward(loaded.model, example, len(dataset), fixed_size)


def _short(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)})"
