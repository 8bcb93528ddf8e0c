"""Networks to analyse: by registry name (shapes only, or random weights) or from a run.

The layer table and FLOPs need only shapes, so a named network is built on
PyTorch's meta device: no memory is allocated and no weights are drawn, which
makes ``cnnzoo info efficientnet_b7`` as quick as ``cnnzoo info lenet5``.
Grad-CAM, feature maps and latency need real weights: a run directory (or a
``.pt`` checkpoint) gives the trained ones, a name gives random ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnzoo.data.in_memory import Normalization
from cnnzoo.models.registry import check_input_size, create_model, get_model_entry
from cnnzoo.tasks import get_task


def default_classes(name: str) -> int:
    """The shared defaults of `cnnzoo list`: 1000 classes, 21 for segmentation (VOC)."""
    return get_task(get_model_entry(name).task).default_num_classes


def resolve_input(name: str, input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``input_shape`` (C, H, W), or the size the paper used; refuse sizes the model cannot take."""
    entry = get_model_entry(name)
    shape = tuple(input_shape) if input_shape is not None else entry.input_size
    channels, height, width = shape
    check_input_size(name, entry.min_size, shape)
    return channels, height, width


def build_model(
    name: str,
    in_channels: int,
    num_classes: int | None = None,
    *,
    meta: bool = False,
    **options: object,
) -> nn.Module:
    """A registered network in evaluation mode, on the meta device (shapes only) or not."""
    classes = default_classes(name) if num_classes is None else num_classes
    if meta:
        with torch.device("meta"):
            return create_model(
                name, num_classes=classes, in_channels=in_channels, **options
            ).eval()
    return create_model(name, num_classes=classes, in_channels=in_channels, **options).eval()


@dataclass
class AnalysedModel:
    """A network with what is needed to feed it images and name its outputs."""

    name: str  # registry name
    model: nn.Module  # in evaluation mode
    task: str  # "classification" or "segmentation"
    class_names: list[str]
    in_channels: int
    image_size: tuple[int, int]  # (H, W) it was trained on, or the paper's size
    normalization: Normalization | None  # of the training images; None for random weights
    source: str  # "random weights" or the checkpoint path


def is_run(source: str) -> bool:
    """Whether ``source`` names a run directory or checkpoint file rather than a model."""
    path = Path(source)
    return path.is_dir() or path.suffix == ".pt" or path.is_file()


def load_analysed(source: str, num_classes: int | None = None) -> AnalysedModel:
    """A trained network from a run directory / checkpoint, or a named one with random weights."""
    if is_run(source):
        from cnnzoo.inference.checkpoints import load_model

        loaded = load_model(source)
        checkpoint = loaded.checkpoint
        return AnalysedModel(
            name=checkpoint["model_name"],
            model=loaded.model,
            task=loaded.task,
            class_names=loaded.class_names,
            in_channels=int(checkpoint["in_channels"]),
            image_size=tuple(checkpoint["image_size"]),  # type: ignore[arg-type]
            normalization=loaded.normalization,
            source=str(loaded.path),
        )
    entry = get_model_entry(source)
    classes = default_classes(source) if num_classes is None else num_classes
    channels, height, width = entry.input_size
    return AnalysedModel(
        name=source,
        model=build_model(source, channels, classes),
        task=entry.task,
        class_names=[str(i) for i in range(classes)],
        in_channels=channels,
        image_size=(height, width),
        normalization=None,
        source="random weights",
    )
