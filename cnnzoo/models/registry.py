"""One registry for every network in the zoo.

A family file decorates each two-line constructor with :func:`register_model`;
:func:`create_model` builds a network by name and :func:`list_models` lists
names with shell-style wildcards, as in timm. Registering a name twice is an
error, and an unknown name is answered with the closest registered names.

The registry states nothing the network already knows: the paper's input size
and the smallest input a network takes are attributes of the network
(``input_size``, ``min_input_size``), read once by building the network on the
meta device, where it costs no memory and no initialisation.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.tasks import get_task

ModelBuilder = Callable[..., nn.Module]
StateDictConverter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ModelEntry:
    """What the zoo knows about one registered network."""

    name: str
    builder: ModelBuilder
    family: str  # e.g. "ResNet"; groups variants in `cnnzoo list`
    paper: str  # short citation: authors, year, arXiv id
    task: str  # "classification" or "segmentation"
    torchvision: str | None  # name of the same architecture in torchvision, if any

    @cached_property
    def _sizes(self) -> tuple[tuple[int, int, int], int]:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            network = self.builder()
        return tuple(network.input_size), network.min_input_size

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) the paper trained on, the default for training and analysis."""
        return self._sizes[0]

    @property
    def min_size(self) -> int:
        """Smallest input side the network accepts (every stride and valid conv fits)."""
        return self._sizes[1]

    @property
    def from_torchvision(self) -> StateDictConverter | None:
        """The converter that renames a torchvision state dict onto this network, if any."""
        if self.torchvision is None:
            return None
        from cnnzoo.models.weights import converter_for

        return converter_for(self.torchvision)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    *, family: str, paper: str, task: str = "classification", torchvision: str | None = None
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register the decorated constructor under its function name."""
    get_task(task)

    def decorate(builder: ModelBuilder) -> ModelBuilder:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, builder, family, paper, task, torchvision)
        return builder

    return decorate


def check_input_size(model: str, min_size: int, shape: Sequence[int]) -> None:
    """Refuse an input (``(..., C, H, W)``) with a side below ``min_size``, naming the minimum.

    The one check of the zoo: training, analysis, benchmarks and every
    classifier's forward pass ask it, so the message is the same everywhere.
    """
    channels, height, width = (int(side) for side in shape[-3:])
    if min(height, width) < min_size:
        raise CnnzooError(
            f"{model} needs inputs of at least {min_size}x{min_size} pixels, got "
            f"{height}x{width}; resize the images (for example --input "
            f"{channels},{min_size},{min_size}, or --image-size {min_size} to train)"
        )


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered model names matching a wildcard pattern, in registration order."""
    _load_model_modules()
    return [
        name
        for name, entry in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (task is None or entry.task == task)
    ]


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``, or a :class:`CnnzooError` naming the closest models."""
    _load_model_modules()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise CnnzooError(f"unknown model {name!r}.{hint} Run `cnnzoo list` to see all models.")
    return _REGISTRY[name]


def create_model(
    name: str,
    num_classes: int | None = None,
    in_channels: int = 3,
    *,
    pretrained: str | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered network.

    Args:
        name: a name from :func:`list_models`.
        num_classes: size of the output (classes, or segmentation labels); None: the
            task's default (ImageNet's 1,000 classes, PASCAL VOC's 21 labels), or the
            classes of shipped ``pretrained`` weights (CIFAR-10's 10).
        in_channels: 1 for grey images, 3 for colour.
        pretrained: ``"torchvision"`` loads torchvision's ImageNet weights
            (downloaded on first use) for networks torchvision also has;
            ``"cifar10"`` cnnzoo's own CIFAR-10 weights, shipped in the package.
            Weights of other classes than ``num_classes`` keep a fresh head.
        features_only: return a feature extractor whose forward gives the
            list of stage feature maps (see ``feature_info``) instead of logits.
        out_indices: with ``features_only``, which stages to return.
        **kwargs: family-specific options (``groups`` for AlexNet,
            ``squeeze`` for SE networks, ``backbone`` for segmentation, ...).
    """
    entry = get_model_entry(name)
    if num_classes is None and pretrained is not None:
        from cnnzoo.models.weights import SHIPPED_SOURCES, shipped_num_classes

        if pretrained in SHIPPED_SOURCES:
            num_classes = shipped_num_classes(name, pretrained)
    if num_classes is None:
        num_classes = get_task(entry.task).default_num_classes
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CnnzooError(f"{label} must be a positive integer, got {value!r}")
    if features_only and entry.task != "classification":
        raise CnnzooError(
            f"{name!r} is a segmentation network; features_only applies to classifiers"
        )
    accepted = inspect.signature(entry.builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in kwargs if k not in accepted and not takes_any]
    if unknown:
        options = [p for p in accepted if p not in ("num_classes", "in_channels")]
        raise CnnzooError(
            f"{name!r} does not take option(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(options) or 'no extra options'}"
        )
    model = entry.builder(num_classes=num_classes, in_channels=in_channels, **kwargs)
    if pretrained is not None:
        from cnnzoo.models.weights import load_pretrained

        load_pretrained(model, entry, pretrained)
    if features_only:
        from cnnzoo.models.classification.base import FeatureExtractor

        model = FeatureExtractor(model, out_indices=out_indices)
    return model


_LOADED = False


def _load_model_modules() -> None:
    """Import the family files once so their decorators fill the registry."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import cnnzoo.models.classification  # noqa: F401
        import cnnzoo.models.segmentation  # noqa: F401
