"""Using a trained network: rebuild it from a checkpoint, evaluate it, predict on image files.

A checkpoint records the model name, its classes, input channels and size,
and the normalisation of its training images, so a model is rebuilt and fed
exactly as it was trained, on the same data or another data set with the
same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnzoo.data import load_data
from cnnzoo.data.images import image_tensor, read_image
from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.mask_pictures import save_prediction
from cnnzoo.data.transforms import resize_images
from cnnzoo.engine.checkpoint import load_checkpoint, load_weights
from cnnzoo.engine.config import config_from_dict
from cnnzoo.engine.evaluate import evaluate, main_output
from cnnzoo.engine.losses import build_loss
from cnnzoo.engine.pairing import check_task, data_request
from cnnzoo.engine.runtime import pick_device
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress
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
    def normalization(self) -> Normalization | None:
        stats = self.checkpoint.get("normalization")
        return Normalization(tuple(stats["mean"]), tuple(stats["std"])) if stats else None


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
    config = config_from_dict(checkpoint["config"])
    get_model_entry(checkpoint["model_name"])  # a clear error if the model is unknown here
    model = create_model(
        checkpoint["model_name"],
        num_classes=len(checkpoint["class_names"]),
        in_channels=checkpoint["in_channels"],
        **config.model_options,
    )
    load_weights(model, checkpoint, path)
    return LoadedModel(model.to(device).eval(), checkpoint, path)


def evaluate_checkpoint(
    location: str | Path,
    *,
    data: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    download: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Metrics of a saved network on a split of its training data or of another data set."""
    target_device = pick_device(device)
    loaded = load_model(location, target_device)
    checkpoint = loaded.checkpoint
    config = config_from_dict(checkpoint["config"])
    data_name = data or config.data
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
    tracker = evaluate(
        loaded.model,
        dataset,
        task=loaded.task,
        num_classes=len(loaded.class_names),
        loss_fn=build_loss(config.loss, ignore_index=splits.ignore_index),
        ignore_index=splits.ignore_index,
        batch_size=batch_size,
        memory_mb=config.eval_memory_mb,
        device=target_device,
        precision=config.precision,
    )
    return {
        "model": checkpoint["model_name"],
        "data": data_name,
        "split": split,
        **tracker.summary(),
        "epochs": checkpoint["epoch"],
        "checkpoint": str(loaded.path),
    }


def predict_images(
    loaded: LoadedModel, paths: list[Path], topk: int = 5, out_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Top-k classes with probabilities per image, or saved masks for segmentation models.

    Classification images are resized to the training size; segmentation
    networks take each image at its own size and write ``STEM_mask.png`` and
    ``STEM_overlay.png`` into ``out_dir``. A bar counts the images where bars
    are on (:mod:`cnnzoo.progress`).
    """
    checkpoint = loaded.checkpoint
    channels = checkpoint["in_channels"]
    device = next(loaded.model.parameters()).device
    results = []
    for path in progress(paths, "predicting", unit="image"):
        image = image_tensor(read_image(path, channels))
        batch = image.unsqueeze(0)
        if loaded.task == "classification":
            batch = resize_images(batch, tuple(checkpoint["image_size"]))
        model_input = loaded.normalization.apply(batch) if loaded.normalization else batch
        with torch.inference_mode():
            scores = main_output(loaded.model(model_input.to(device))).float().cpu()
        if loaded.task == "classification":
            probabilities = scores.softmax(1)[0]
            top = probabilities.topk(min(topk, probabilities.numel()))
            classes = [
                {"class": loaded.class_names[i], "probability": float(p)}
                for p, i in zip(top.values.tolist(), top.indices.tolist())
            ]
            results.append({"image": str(path), "predictions": classes})
        else:
            written = save_prediction(
                image, scores[0], loaded.class_names, out_dir or Path("predictions"), path.stem
            )
            results.append({"image": str(path), "files": [str(p) for p in written]})
    return results


def _short(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)})"
