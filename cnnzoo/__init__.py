"""cnnzoo: the landmark convolutional networks, faithful, trainable and open to inspection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import create_model, get_model_entry, list_models, register_model

if TYPE_CHECKING:
    import torch

    from cnnzoo.inference.predictor import Predictor

__version__ = "0.1.0"
__all__ = [
    "CnnzooError",
    "create_model",
    "get_model_entry",
    "list_models",
    "load",
    "register_model",
    "__version__",
]


def load(location: str | Path, device: str | torch.device = "cpu") -> Predictor:
    """A trained network, in evaluation mode on ``device``, with the preprocessing it expects.

    ``location`` is a folder written by ``cnnzoo export RUN --format
    safetensors``, a run directory or a ``.pt`` checkpoint. The result's
    ``model`` is the plain ``nn.Module``; ``preprocess(images)`` reads files
    (or takes Pillow images or tensors) and resizes and normalises them as
    evaluation did; ``predict(images)`` names the top classes::

        predictor = cnnzoo.load("runs/resnet20-cifar10/export")
        predictor.predict(["cat.png"])  # [[{"class": "cat", "probability": 0.91}, ...]]

    Nothing is downloaded. The engine is imported here, on first use, so that
    ``import cnnzoo`` stays quick.
    """
    from cnnzoo.inference.predictor import load_network

    return load_network(location, device)
