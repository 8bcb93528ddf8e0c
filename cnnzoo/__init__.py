"""cnnzoo: the landmark convolutional networks, faithful, trainable and open to inspection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnzoo.errors import CnnzooError

if TYPE_CHECKING:
    import torch

    from cnnzoo.inference.predictor import Predictor
    from cnnzoo.models.registry import create_model, get_model_entry, list_models, register_model

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

# The registry's functions, imported on first use: the registry imports torch, which
# `import cnnzoo` (and so `cnnzoo --version` and `cnnzoo --help`) need not wait for.
_REGISTRY_FUNCTIONS = ("create_model", "get_model_entry", "list_models", "register_model")


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_FUNCTIONS:
        from cnnzoo.models import registry

        value = getattr(registry, name)
        globals()[name] = value  # the next look-up finds it without coming here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load(location: str | Path, device: str | torch.device = "cpu") -> Predictor:
    """A trained network, in evaluation mode on ``device``, with the preprocessing it expects.

    ``location`` is a folder written by ``cnnzoo export RUN --format
    safetensors``, a run directory or a ``.pt`` checkpoint. The result's
    ``model`` is the plain ``nn.Module``; ``preprocess(images)`` reads files
    (or takes Pillow images or tensors) and resizes and normalises them as
    evaluation did; ``predict(images)`` names the top classes::

        predictor = cnnzoo.load("runs/resnet20-cifar10/export")
        predictor.predict(["cat.png"])  # [[{"class": "cat", "probability": 0.91}, ...]]

    Nothing is downloaded. Inference is imported here, on first use, so that
    ``import cnnzoo`` stays quick.
    """
    from cnnzoo.inference.predictor import Predictor

    return Predictor.load(location, device)
