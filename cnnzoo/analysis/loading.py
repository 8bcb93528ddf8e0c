"""Networks to analyse by registry name: shapes only, or random weights.

The layer table and FLOPs need only shapes, so a named network is built on
PyTorch's meta device: no memory is allocated and no weights are drawn, which
makes ``cnnzoo info efficientnet_b7`` as quick as ``cnnzoo info lenet5``.
Grad-CAM, feature maps and latency need real weights: they analyse a
:class:`~cnnzoo.inference.predictor.Predictor` (``Predictor.load``), trained
from a run directory, a checkpoint or an export, or random from a name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

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
