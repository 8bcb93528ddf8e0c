"""torchvision's weights, found in the torch hub cache and loaded into our networks.

``create_model(name, pretrained="torchvision")`` comes here. The weights are
torchvision's released files, looked up by their exact names (the last part
of the URL in torchvision's weights enums, e.g. ``vgg11-8a719046.pth``) in
``torch.hub.get_dir()/checkpoints``, the folder torchvision itself caches them
in (``$TORCH_HOME/hub/checkpoints``). A missing file is downloaded once, with
a short timeout; where that fails (no network) one message names the file and
the folder to place it in. :mod:`cnnzoo.models.weights.torchvision` renames the
tensors onto our networks; loading is strict: every tensor of the file lands
in the network, except a classifier head that is reset to other classes.

Two sources: ``"torchvision"`` loads torchvision's weights of the whole
network where torchvision has it (``fcn_resnet50``, ``deeplabv3_resnet101``:
COCO images with the VOC classes), and ``"imagenet"`` the ImageNet weights of
the backbone only. For classifiers, and segmentation networks torchvision
does not have, both are the backbone's ImageNet weights. A third,
``"cifar10"``, is cnnzoo's own weights that ship in the package
(:mod:`cnnzoo.models.weights.shipped`); they load through the same fitting.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import ModelEntry, get_model_entry, list_models
from cnnzoo.models.segmentation.base import SegmentationModel
from cnnzoo.models.weights import shipped
from cnnzoo.models.weights.torchvision import (
    TORCHVISION_SEGMENTATION,
    TORCHVISION_SEGMENTATION_BACKBONES,
    StateDict,
    converter_for,
    segmentation_weights,
)

PRETRAINED_SOURCES = ("torchvision", "imagenet", *shipped.SHIPPED_SOURCES)
# Seconds a download may wait for the server: enough for a live connection, short enough
# that a machine without network hears the file's name at once instead of after retries.
DOWNLOAD_TIMEOUT_S = 10
# torchvision's file names end in the first hex digits of the file's SHA-256 (torch.hub's rule).
HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainedReport:
    """What :func:`load_pretrained` put into a network; kept as ``model.pretrained_report``."""

    architecture: str  # torchvision's name of the weights' network, e.g. "vgg16"
    file: Path  # the weight file read
    loaded: tuple[str, ...]  # our tensor names that now hold the file's values
    reset: tuple[str, ...]  # ours left at their initialisation: a new head or decoder
    # Builder options the weights need, so that a network rebuilt from its checkpoint computes
    # what it was trained to (GoogLeNet's ``transform_input``).
    options: dict[str, Any] = field(default_factory=dict)


def weights_folder() -> Path:
    """Where torchvision's weight files are looked for: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_url(architecture: str) -> str:
    """The URL of torchvision's default weights for ``architecture`` (from its weights enum)."""
    from torchvision.models import get_model_weights

    return get_model_weights(architecture).DEFAULT.url


def weights_file_name(architecture: str) -> str:
    """The file torchvision stores ``architecture``'s weights as, e.g. ``vgg11-8a719046.pth``."""
    return Path(urlparse(weights_url(architecture)).path).name


def read_weights(architecture: str, *, download: bool = True) -> tuple[Path, StateDict]:
    """torchvision's state dict of ``architecture`` from the hub cache (downloaded if asked)."""
    path = weights_folder() / weights_file_name(architecture)
    if not path.is_file():
        reason = "downloads are off"
        if download:
            try:
                download_weights(weights_url(architecture), path)
            except OSError as error:
                reason = f"the download failed: {error}"
        if not path.is_file():
            raise CnnzooError(
                f"torchvision's weights for {architecture} are missing and {reason}; download "
                f"{weights_url(architecture)} and place it as {path.name} in {path.parent}"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which, and what to do
        raise CnnzooError(
            f"cannot read the weights in {path} ({type(error).__name__}); delete the file "
            f"and place {weights_url(architecture)} there again"
        ) from None
    return path, state


def download_weights(url: str, destination: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``destination`` in one try, checking the hash in its name.

    The file appears only once it is complete and its SHA-256 starts with the
    digits in its name, so an interrupted download leaves nothing to load.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as partial:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    partial.write(chunk)
            expected = HASH_IN_NAME.search(destination.name)
            if expected and not digest.hexdigest().startswith(expected[1]):
                raise OSError(f"{url} arrived corrupted (its SHA-256 does not match its name)")
        except BaseException:
            Path(partial.name).unlink(missing_ok=True)
            raise
    shutil.move(partial.name, destination)


def load_pretrained(
    model: nn.Module, entry: ModelEntry, source: str, *, download: bool = True
) -> PretrainedReport:
    """Load ``source``'s weights into ``model`` in place; report what was loaded and reset.

    A classifier built for other than 1,000 classes keeps its fresh head. A
    segmentation network takes its encoder (and what its paper converts, see
    :mod:`cnnzoo.models.weights.torchvision`); its decoder and heads stay as built.
    """
    if source not in PRETRAINED_SOURCES:
        raise CnnzooError(
            f"unknown pretrained source {source!r}; use one of: {', '.join(PRETRAINED_SOURCES)}"
        )
    if getattr(model, "in_channels", 3) != 3:
        raise CnnzooError(
            "pretrained weights take 3 channels; build the network with in_channels=3 and "
            "convert grey images to RGB (repeat the channel)"
        )
    if source in shipped.SHIPPED_SOURCES:
        architecture = f"{entry.name} ({source})"
        path, converted = shipped.read_shipped(entry.name, source)
    else:
        architecture, path, converted = _torchvision_weights(model, entry, source, download)
    loaded, reset = _fit(model, converted, f"{path.name} ({architecture})", entry.name)
    with torch.no_grad():
        model.load_state_dict(loaded, strict=False)
    options = pretrained_options_of(model, source)
    for option, value in options.items():
        setattr(model, option, value)
    report = PretrainedReport(architecture, path, tuple(loaded), tuple(reset), options)
    if reset:
        log.info("%s: %s reset to fresh initialisation: %s", entry.name, path.name, reset)
    model.pretrained_report = report
    return report


def _torchvision_weights(
    model: nn.Module, entry: ModelEntry, source: str, download: bool
) -> tuple[str, Path, StateDict]:
    """torchvision's architecture for ``model``, its file, and its tensors under our names."""
    architecture, converter = _weights_of(model, entry, source)
    path, state = read_weights(architecture, download=download)
    try:
        return architecture, path, converter(state)
    except (KeyError, ValueError, RuntimeError) as error:  # names the converter cannot place
        raise CnnzooError(
            f"the weights in {path} are not torchvision's {architecture}, they are for another "
            f"architecture: {error}"
        ) from None


def _weights_of(
    model: nn.Module, entry: ModelEntry, source: str
) -> tuple[str, Callable[[StateDict], StateDict]]:
    if isinstance(model, SegmentationModel):
        return segmentation_weights(model, whole=source == "torchvision")
    if entry.torchvision is None:
        with_weights = ", ".join(models_with_torchvision_weights())
        raise CnnzooError(
            f"{entry.name!r} has no torchvision weights; models that have: {with_weights}"
        )
    return entry.torchvision, converter_for(entry.torchvision)


def _optional_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Parts of ``model`` that may differ from the file: heads, decoders; never the encoder."""
    if isinstance(model, SegmentationModel):
        backbone_head = getattr(getattr(model.encoder, "model", None), "head_modules", ())
        return tuple(f"encoder.model.{name}." for name in backbone_head)
    return tuple(f"{name}." for name in getattr(model, "head_modules", ()))


def _fit(
    model: nn.Module, converted: StateDict, weights: str, name: str
) -> tuple[dict[str, Any], list[str]]:
    """The file's tensors that ``model`` takes, and the keys of ``model`` left as built.

    Outside the optional parts (a classifier's head; everything of a
    segmentation network but its encoder) every tensor must match by name and
    shape, both ways: anything else means weights of another architecture.
    """
    own = model.state_dict()
    prefixes = _optional_prefixes(model)
    segmentation = isinstance(model, SegmentationModel)

    def optional(key: str) -> bool:
        return key.startswith(prefixes) or (segmentation and not key.startswith("encoder."))

    problems = [
        f"{k!r} is not in the network" for k in converted if k not in own and not optional(k)
    ]
    problems += [f"{k!r} is not in the file" for k in own if k not in converted and not optional(k)]
    problems += [
        f"{k!r} is {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the network"
        for k, v in converted.items()
        if k in own and v.shape != own[k].shape and not optional(k)
    ]
    if problems:
        raise CnnzooError(
            f"the weights {weights} do not fit {name!r}, they are for another architecture: "
            f"{'; '.join(problems[:3])}"
        )
    loaded = {k: v for k, v in converted.items() if k in own and v.shape == own[k].shape}
    return loaded, [k for k in own if k not in loaded]


def pretrained_preprocessing(name: str, source: str = "torchvision", **options: Any) -> dict:
    """The preprocessing ``name``'s pretrained weights expect, from torchvision's weights enum.

    ``{"mean", "std", "resize_size", "crop_size", "interpolation"}``: images
    resized so that their shorter side is ``resize_size``, centre-cropped to
    ``crop_size`` (None: no crop, as for segmentation), scaled to [0, 1] and
    normalised per channel. ``options`` are the network's (e.g. ``backbone``).
    Shipped weights (``"cifar10"``) also give their ``class_names`` and no
    resize: their images are fed at ``crop_size``.
    """
    from torchvision.models import get_model_weights

    if source in shipped.SHIPPED_SOURCES:
        return shipped.shipped_preprocessing(name, source)

    entry = get_model_entry(name)
    with torch.device("meta"):  # which weights it takes, without building real tensors
        model = entry.builder(**options)
    architecture, _ = _weights_of(model, entry, source)
    transforms = get_model_weights(architecture).DEFAULT.transforms()
    crop = getattr(transforms, "crop_size", None)
    return {
        "mean": list(transforms.mean),
        "std": list(transforms.std),
        "resize_size": transforms.resize_size[0] if transforms.resize_size else None,
        "crop_size": crop[0] if crop else None,
        "interpolation": transforms.interpolation.value,
    }


def pretrained_options(name: str, source: str = "torchvision", **options: Any) -> dict[str, Any]:
    """The builder options that loading ``source``'s weights into ``name`` switches on.

    Known before any weight is read, so that a run records the network it will
    train from the start. ``options`` are the network's own (e.g. ``backbone``).
    """
    with torch.device("meta"):  # which options apply, without building real tensors
        model = get_model_entry(name).builder(**options)
    return pretrained_options_of(model, source)


def pretrained_options_of(model: nn.Module, source: str = "torchvision") -> dict[str, Any]:
    """The options :func:`load_pretrained` sets on ``model``, by name.

    Shipped weights switch nothing on: they were trained by cnnzoo on the
    network as built.
    """
    if source in shipped.SHIPPED_SOURCES:
        return {}
    if hasattr(model, "transform_input"):
        # torchvision's GoogLeNet weights expect its re-normalisation of the ImageNet input,
        # which torchvision switches on whenever it loads them.
        return {"transform_input": True}
    return {}


def models_with_torchvision_weights() -> list[str]:
    """Registered networks that torchvision also has, so that its weights fit them."""
    return [n for n in list_models() if get_model_entry(n).torchvision is not None]


def weight_files() -> list[tuple[str, str, str]]:
    """``(cnnzoo network, torchvision architecture, file name)`` of every loadable weight file.

    The classifiers' ImageNet weights, then torchvision's whole segmentation
    networks; the documentation's table of files to place offline is this list.
    """
    rows = [(name, get_model_entry(name).torchvision) for name in models_with_torchvision_weights()]
    rows += [
        (f"{name} (backbone='{backbone}', output_stride=8)", f"{prefix}_{backbone}")
        for _, name, prefix, _ in TORCHVISION_SEGMENTATION
        for backbone in TORCHVISION_SEGMENTATION_BACKBONES
    ]
    return [(name, architecture, weights_file_name(architecture)) for name, architecture in rows]
