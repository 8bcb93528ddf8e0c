"""A trained network ready to use: :class:`Predictor`, what ``cnnzoo.load`` returns.

:meth:`Predictor.load` reads a run directory, a ``.pt`` checkpoint or a folder
that ``cnnzoo export --format safetensors`` wrote (:mod:`cnnzoo.inference.export`)
into the network in evaluation mode with its preprocessing, as evaluation fed
it. A checkpoint records the model name, its classes and how evaluation
prepared its images (:class:`~cnnzoo.runs.checkpoint.Checkpoint`), so the
network is rebuilt through the registry (:func:`rebuild_network`) and fed
exactly as it was trained. Nothing is downloaded: a network that started from
pretrained weights is rebuilt from its own trained weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.preprocessing import ImageInput, Preprocessing, listed_images
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.batching import main_output
from cnnzoo.inference.export import CONFIG_FILE, WEIGHTS_FILE, read_shared_config, shared_checkpoint
from cnnzoo.inference.predictions import ranked_classes
from cnnzoo.models.registry import create_model, get_model_entry, list_models
from cnnzoo.runs.checkpoint import Checkpoint, load_weights, own_options
from cnnzoo.runs.directory import checkpoint_path
from cnnzoo.tasks import get_task


@dataclass(frozen=True)
class InputTransform:
    """One image (file, Pillow image or (C, H, W) tensor) to the network's (C, H, W) input.

    What ``predictor.transforms`` is, as torchvision's weights carry their
    ``transforms()``: resized, cropped and normalized as evaluation prepared
    images; stack its outputs into a batch.
    """

    preprocessing: Preprocessing

    def __call__(self, image: ImageInput) -> Tensor:
        return self.preprocessing(image)[0]


@dataclass
class Predictor:
    """A network ready to use: in evaluation mode, with its classes and its preprocessing.

    ``predictor.model`` is the plain ``nn.Module`` (fine-tune it, export it);
    :meth:`preprocess` turns files or pictures into its input and
    :meth:`predict` names the classes. Built from a run directory or a
    checkpoint (:meth:`from_checkpoint`), an export folder
    (:meth:`from_export`) or a registered name (:meth:`from_model_name`);
    :meth:`load` picks among them, and is what ``cnnzoo.load`` returns.
    """

    model: nn.Module
    class_names: list[str]
    task: str
    preprocessing: Preprocessing
    name: str = ""  # the registry name ("" for an unnamed module: its class name)
    checkpoint: Checkpoint | None = None  # what it was read from, when a checkpoint
    source: str = "random weights"  # where the weights came from, for people
    image_size: tuple[int, int] | None = None  # (H, W) it trained on, where known

    def __post_init__(self) -> None:
        if not self.name:
            self.name = type(self.model).__name__

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def input_size(self) -> tuple[int, int, int] | None:
        """(C, H, W) the network takes, or None when it takes any size (segmentation)."""
        size = self.preprocessing.size
        return (self.preprocessing.channels, *size) if size is not None else None

    @property
    def example_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input to trace, time or export it with: the input size, else the
        size it trained on, else the paper's."""
        if self.input_size is not None:
            return self.input_size
        height, width = self.image_size or get_model_entry(self.name).input_size[1:]
        return self.preprocessing.channels, height, width

    @property
    def transforms(self) -> InputTransform:
        """One image to the network's normalized (C, H, W) input."""
        return InputTransform(self.preprocessing)

    def preprocess(self, images: ImageInput | Sequence[ImageInput]) -> Tensor:
        """The network's input for ``images``: resized, cropped and normalised as in evaluation."""
        return self.preprocessing(images)

    def __call__(self, images: ImageInput | Sequence[ImageInput]) -> Tensor:
        """The network's scores for ``images``: (N, classes) or (N, classes, H, W)."""
        with torch.inference_mode():
            return main_output(self.model(self.preprocess(images).to(self.device))).float().cpu()

    def predict(
        self, images: ImageInput | Sequence[ImageInput], topk: int = 5
    ) -> list[list[dict[str, Any]]] | list[Tensor]:
        """Per image, the top-k ``{"class", "probability"}`` (most likely first);
        for a segmentation network, its (H, W) map of class indices."""
        if self.task == "segmentation":  # images keep their own sizes: one at a time
            return [self(image)[0].argmax(0) for image in listed_images(images)]
        return ranked_classes(self(images), self.class_names, topk)

    @classmethod
    def load(
        cls,
        location: str | Path,
        device: torch.device | str = "cpu",
        *,
        num_classes: int | None = None,
    ) -> Predictor:
        """The network at ``location``, in evaluation mode on ``device``.

        ``location`` is an export folder (``config.json`` +
        ``model.safetensors``, or the ``.safetensors`` file in it), a run
        directory (the checkpoint :func:`shared_checkpoint` picks, as
        ``cnnzoo export`` does), a ``.pt`` checkpoint, or a registered
        model's name (random weights, ``num_classes`` outputs). Nothing is
        read from the torch hub cache nor downloaded: a trained network is
        built without the pretrained weights it may have started from
        (:func:`~cnnzoo.runs.checkpoint.own_options`), then filled with its own.
        """
        path = Path(location)
        if path.is_file() and path.suffix == ".safetensors":
            path = path.parent
        if path.is_dir() and (path / CONFIG_FILE).is_file():
            return cls.from_export(path, device)
        if path.is_dir() and not any((path / name).is_file() for name in ("best.pt", "last.pt")):
            raise CnnzooError(
                f"{path} is neither an export folder ({CONFIG_FILE} and {WEIGHTS_FILE}) nor a "
                "run directory (best.pt); give one of them, or a .pt checkpoint"
            )
        if not path.exists() and _names_a_model(location):
            return cls.from_model_name(location, num_classes=num_classes, device=device)
        return cls.from_checkpoint(shared_checkpoint(path), device)

    @classmethod
    def from_checkpoint(
        cls, location: str | Path | Checkpoint, device: torch.device | str = "cpu"
    ) -> Predictor:
        """The network of a checkpoint: a ``.pt`` file, a run directory's best.pt (else
        last.pt), or a :class:`~cnnzoo.runs.checkpoint.Checkpoint` already read."""
        if isinstance(location, Checkpoint):
            checkpoint, path = location, Path("the checkpoint")
        else:
            path = checkpoint_path(location)
            checkpoint = Checkpoint.load(path)
        options = checkpoint.recipe.model_options
        network = (checkpoint.model_name, checkpoint.class_names, checkpoint.in_channels)
        model = rebuild_network(*network, options, checkpoint.weights, path)
        return cls(
            model.to(device).eval(),
            list(checkpoint.class_names),
            checkpoint.task,
            checkpoint.preprocessing,
            name=checkpoint.model_name,
            checkpoint=checkpoint,
            source=str(path),
            image_size=checkpoint.image_size,
        )

    @classmethod
    def from_export(cls, folder: str | Path, device: torch.device | str = "cpu") -> Predictor:
        """Rebuild an exported network through the registry and fill it from its safetensors."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        config = read_shared_config(folder / CONFIG_FILE)
        weights_path = folder / WEIGHTS_FILE
        if not weights_path.is_file():
            raise CnnzooError(
                f"{folder} has {CONFIG_FILE} but no {WEIGHTS_FILE}; export the run again"
            )
        try:
            weights = load_file(weights_path)
        except (SafetensorError, OSError) as error:
            raise CnnzooError(
                f"{weights_path} is not a readable safetensors file: {error}"
            ) from None
        network = (config["model"], config["class_names"], config["in_channels"])
        model = rebuild_network(*network, config["model_options"], weights, weights_path)
        size = config.get("image_size")
        return cls(
            model.to(device).eval(),
            list(config["class_names"]),
            config["task"],
            Preprocessing.from_dict(config["preprocessing"]),
            name=config["model"],
            source=str(weights_path),
            image_size=(int(size[0]), int(size[1])) if size else None,
        )

    @classmethod
    def from_model_name(
        cls,
        name: str,
        *,
        num_classes: int | None = None,
        pretrained: str | None = None,
        device: torch.device | str = "cpu",
        **options: Any,
    ) -> Predictor:
        """A registered network at the paper's input size: random weights, or ``pretrained``
        ones (``"torchvision"``: ImageNet's, downloaded on first use; ``"cifar10"``:
        cnnzoo's shipped CIFAR-10 weights) fed as they expect.

        Random weights are fed unnormalized pixels on [0, 1]; the classes
        are numbered (``num_classes``, default the task's), or named by
        weights that name them (shipped weights, when ``num_classes`` is theirs).
        """
        from cnnzoo.models.weights import pretrained_preprocessing

        entry = get_model_entry(name)  # an unknown name says which models exist
        channels, height, width = entry.input_size
        size = (height, width) if entry.task == "classification" else None
        preprocessing = Preprocessing(channels, size, None, None)
        named: list[str] = []
        if pretrained is not None:
            expected = pretrained_preprocessing(name, pretrained, **options)
            preprocessing = _pretrained_feed(expected, entry.task)
            channels = preprocessing.channels
            named = expected.get("class_names", [])
        classes = num_classes or len(named) or get_task(entry.task).default_num_classes
        class_names = named if len(named) == classes else [str(i) for i in range(classes)]
        model = create_model(
            name, num_classes=classes, in_channels=channels, pretrained=pretrained, **options
        )
        source = f"{pretrained} pretrained weights" if pretrained else "random weights"
        return cls(
            model.to(device).eval(),
            class_names,
            entry.task,
            preprocessing,
            name=name,
            source=source,
            image_size=(height, width),
        )


def _names_a_model(location: str | Path) -> bool:
    """Whether ``location``, which is no file, is meant as a model name rather than a path:
    a registered name, or a bare word (an unknown one gets the registry's close names)."""
    if not isinstance(location, str):
        return False
    bare = "/" not in location and "\\" not in location and not Path(location).suffix
    return location in list_models() or bare


def _pretrained_feed(expected: dict[str, Any], task: str) -> Preprocessing:
    """How pretrained weights expect their images (``expected``, their preprocessing):
    RGB, their crop, their stats."""
    crop, resize = expected["crop_size"], expected["resize_size"]
    size = (crop, crop) if crop is not None and task == "classification" else None
    ratio = crop / resize if size is not None and resize else None
    stats = Normalization(tuple(expected["mean"]), tuple(expected["std"]))
    return Preprocessing(3, size, ratio, stats)


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
    (:func:`~cnnzoo.runs.checkpoint.own_options`): its trained weights replace them, so loading a
    run never reads the torch hub cache nor downloads anything.
    """
    get_model_entry(name)  # a clear error if the model is unknown here
    model = create_model(
        name, num_classes=len(class_names), in_channels=in_channels, **own_options(options)
    )
    load_weights(model, weights, source, f"{name!r} with {len(class_names)} classes")
    return model
