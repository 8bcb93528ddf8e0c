"""Sharing a trained network: a folder of safetensors weights, a JSON config and a model card.

``cnnzoo export RUN --format safetensors`` writes three files, the layout
the Hugging Face Hub and timm's ``push_to_hub`` use, so the folder can be
published as it is:

* ``model.safetensors``: the weights of the run's best checkpoint (the moving
  average's, ``best-ema.pt``, when it validated better), in the safetensors
  format, which holds tensors and nothing else: loading it runs no code, unlike
  a pickled ``.pt`` file;
* ``config.json``: everything needed to rebuild the network and feed it
  (:func:`shared_config`);
* ``README.md``: a model card (Mitchell et al. 2019, "Model Cards for Model
  Reporting", arXiv:1810.03993): the recipe, the data, the metrics, the
  command that trains it again, the paper and the limits of its use.

:meth:`Predictor.load` (``cnnzoo.load``) reads such a folder, a run directory or
a checkpoint back into a :class:`Predictor`: the network in evaluation mode
with its preprocessing, as evaluation fed it. Nothing is downloaded: a network
that started from pretrained weights is rebuilt from its own trained weights.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.preprocessing import ImageInput, Preprocessing, listed_images
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.batching import main_output
from cnnzoo.inference.checkpoints import checkpoint_path, own_options, rebuild_network
from cnnzoo.inference.predictions import ranked_classes
from cnnzoo.models.registry import create_model, get_model_entry, list_models
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.config import TrainConfig
from cnnzoo.tasks import get_task

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)
EXPORT_FORMAT = 1  # config.json's "format"; a reader refuses newer ones by number
# Fields of a recipe that say where this machine keeps things, not how the network was trained.
LOCAL_FIELDS = ("out", "data_dir")


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
        (:func:`own_options`), then filled with its own.
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
        ones (``"torchvision"``: ImageNet's, downloaded on first use) fed as they expect.

        Random weights are fed unnormalized pixels on [0, 1]; the classes
        are numbered (``num_classes``, default the task's).
        """
        entry = get_model_entry(name)  # an unknown name says which models exist
        classes = num_classes or get_task(entry.task).default_num_classes
        channels, height, width = entry.input_size
        size = (height, width) if entry.task == "classification" else None
        preprocessing = Preprocessing(channels, size, None, None)
        if pretrained is not None:
            preprocessing = _pretrained_feed(name, pretrained, entry.task, options)
            channels = preprocessing.channels
        model = create_model(
            name, num_classes=classes, in_channels=channels, pretrained=pretrained, **options
        )
        source = f"{pretrained} pretrained weights" if pretrained else "random weights"
        return cls(
            model.to(device).eval(),
            [str(index) for index in range(classes)],
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


def _pretrained_feed(name: str, source: str, task: str, options: dict[str, Any]) -> Preprocessing:
    """How ``name``'s pretrained weights expect their images: RGB, their crop, their stats."""
    from cnnzoo.models.weights import pretrained_preprocessing

    expected = pretrained_preprocessing(name, source, **options)
    crop, resize = expected["crop_size"], expected["resize_size"]
    size = (crop, crop) if crop is not None and task == "classification" else None
    ratio = crop / resize if size is not None and resize else None
    stats = Normalization(tuple(expected["mean"]), tuple(expected["std"]))
    return Preprocessing(3, size, ratio, stats)


# --- which weights a run shares ----------------------------------------------------------


def shared_checkpoint(location: str | Path) -> Path:
    """The checkpoint a run shares: a run directory's best weights, or the file given.

    A run directory shares ``best.pt``, or ``best-ema.pt`` when the moving
    average's best validation score beat the raw weights'
    (:mod:`cnnzoo.train.ema`): the same rule of "best on validation" that
    chose ``best.pt``.
    """
    path = checkpoint_path(location)
    average = path.parent / "best-ema.pt"
    if not Path(location).is_dir() or path.name != "best.pt" or not average.is_file():
        return path
    raw_score = Checkpoint.load(path).best_score
    average_score = Checkpoint.load(average).best_ema_score
    return average if average_score > raw_score else path


# What each checkpoint a run writes holds, as the model card says it.
CHECKPOINT_WEIGHTS = {
    "best.pt": "the epoch that scored best on the validation split",
    "best-ema.pt": "the moving average of the weights (--model-ema) at its best on validation",
    "last.pt": "the last epoch",
}


def shared_config(checkpoint: Checkpoint, source: Path) -> dict[str, Any]:
    """``config.json``: the network's name, options, classes and input, and how to feed it."""
    from cnnzoo import __version__

    config = checkpoint.recipe
    options = own_options(config.model_options)
    # The source (--model-option pretrained=..., or a recipe's own pretrained field) is kept
    # as a fact about the recipe, with the preprocessing those weights expected.
    pretrained = config.model_options.get("pretrained") or config.pretrained
    return {
        "format": EXPORT_FORMAT,
        "cnnzoo_version": __version__,
        "model": checkpoint.model_name,
        "model_options": options,
        "task": checkpoint.task,
        "class_names": list(checkpoint.class_names),
        "in_channels": checkpoint.in_channels,
        "image_size": list(checkpoint.image_size),
        "preprocessing": checkpoint.preprocessing.to_dict(),
        "pretrained": _pretrained_preprocessing(checkpoint.model_name, pretrained, options),
        "weights": source.name,
        "epochs": checkpoint.epoch,
    }


def _pretrained_preprocessing(
    name: str, source: str | None, options: dict[str, Any]
) -> dict[str, Any] | None:
    """The preprocessing the pretrained weights a run started from expect (None: none)."""
    if source is None:
        return None
    from cnnzoo.models.weights import pretrained_preprocessing

    return {"source": source, **pretrained_preprocessing(name, source, **options)}


# --- writing the folder ------------------------------------------------------------------


def export_shared(location: str | Path, out_dir: Path) -> dict[str, Any]:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` of a run into ``out_dir``.

    Returns the config written. ``out_dir`` is checked by the caller
    (:func:`cnnzoo.cli.paths.writable_output`); files already there are replaced.
    """
    from safetensors.torch import save

    path = shared_checkpoint(location)
    checkpoint = Checkpoint.load(path)
    config = shared_config(checkpoint, path)
    metrics_path = path.parent / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    out_dir.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share memory; each tensor is written on its own.
    weights = {
        name: tensor.detach().contiguous().clone() for name, tensor in checkpoint.weights.items()
    }
    # Written like the other two files (save_file would make it readable by its owner only).
    (out_dir / WEIGHTS_FILE).write_bytes(save(weights, metadata={"format": "pt"}))
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / CARD_FILE).write_text(model_card(config, checkpoint.recipe, metrics))
    return config


def train_command(config: TrainConfig) -> str:
    """The ``cnnzoo train`` command that trains ``config`` again.

    Only the fields that differ from their defaults are written, each as the
    flag ``cnnzoo train`` generates for it; where this machine wrote the run
    and keeps its data (:data:`LOCAL_FIELDS`) is left to the reader.
    """
    defaults = TrainConfig()
    words = ["cnnzoo", "train", config.model]
    for field in dataclasses.fields(TrainConfig):
        value = getattr(config, field.name)
        if field.name == "model" or field.name in LOCAL_FIELDS:
            continue
        if value != getattr(defaults, field.name):
            words += _flag(field.name, value)
    return shlex.join(words)


def _flag(name: str, value: Any) -> list[str]:
    """The words of one field's flag: ``--name value``, ``--name``/``--no-name``, or options."""
    flag = "--" + name.replace("_", "-")
    if name == "model_options":  # one --model-option KEY=VALUE each, the value read as YAML
        return [word for key, option in value.items()
                for word in ("--model-option", f"{key}={json.dumps(option)}")]  # fmt: skip
    if isinstance(value, bool):
        return [flag if value else f"--no-{flag[2:]}"]
    if isinstance(value, list):
        return [flag, ",".join(str(item) for item in value)]
    return [flag, str(value)]


def model_card(shared: dict[str, Any], config: TrainConfig, metrics: dict[str, Any] | None) -> str:
    """``README.md``: what the network is, how it was trained and measured, and its limits."""
    entry = get_model_entry(shared["model"])
    size = "x".join(str(side) for side in shared["image_size"])
    recipe = {k: v for k, v in config.to_dict().items() if k not in LOCAL_FIELDS}
    pipeline = (
        "image-classification" if shared["task"] == "classification" else "image-segmentation"
    )
    sections = [
        "---",
        "library_name: cnnzoo",
        f"pipeline_tag: {pipeline}",
        f"tags: [cnnzoo, {json.dumps(entry.family)}, {json.dumps(shared['model'])}]",
        f"datasets: [{json.dumps(config.data)}]",
        "---",
        "",
        f"# {shared['model']} trained on {config.data}",
        "",
        f"A {entry.family} {shared['task']} network from {entry.paper}, trained with cnnzoo "
        f"{shared['cnnzoo_version']} for {_count(shared['epochs'], 'epoch')} on {size} "
        f"inputs. The weights are {shared['weights']}'s: "
        f"{CHECKPOINT_WEIGHTS.get(shared['weights'], 'a checkpoint of the run')}.",
        "",
        "## Use",
        "",
        "```python",
        "import cnnzoo",
        "",
        'predictor = cnnzoo.load("path/to/this/folder")  # the network with its preprocessing',
        'predictor.predict(["image.png"])',
        "```",
        "",
        *_data_section(shared, config),
        *_metrics_section(shared, metrics),
        "## Recipe",
        "",
        "The run's configuration (`config.yaml`):",
        "",
        "```yaml",
        yaml.safe_dump(recipe, sort_keys=False).rstrip(),
        "```",
        "",
        "## Reproduce",
        "",
        "```",
        train_command(config),
        "```",
        "",
        *_limits_section(shared, config),
    ]
    return "\n".join(sections) + "\n"


def _data_section(shared: dict[str, Any], config: TrainConfig) -> list[str]:
    classes = shared["class_names"]
    shown = ", ".join(classes[:20]) + (
        f", ... ({len(classes)} in all)" if len(classes) > 20 else ""
    )
    feed = shared["preprocessing"]
    if shared["task"] == "segmentation":
        resize = "each image at its own size"
    elif feed["crop_ratio"] is None:
        resize = f"the whole image resized to {feed['size'][0]}x{feed['size'][1]}"
    else:
        resize = (
            f"resized so that {feed['size'][0]}x{feed['size'][1]} is {feed['crop_ratio']:g} "
            "of it, then centre-cropped"
        )
    normalise = (
        f"normalised per channel with mean {_numbers(feed['mean'])} and std {_numbers(feed['std'])}"
        if feed["mean"]
        else "scaled to [0, 1]"
    )
    channels = "grey (1 channel)" if shared["in_channels"] == 1 else "RGB (3 channels)"
    lines = [
        "## Data",
        "",
        f"- Data set: `{config.data}`; {config.val_fraction:g} of the training images held out "
        f"for validation (seed {config.seed}).",
        f"- {len(classes)} classes: {shown}.",
        f"- Input: {channels}, {resize}, {normalise}.",
    ]
    if shared["pretrained"]:
        lines.append(
            f"- Started from {shared['pretrained']['source']}'s pretrained weights, which "
            f"expect mean {_numbers(shared['pretrained']['mean'])} and std "
            f"{_numbers(shared['pretrained']['std'])}."
        )
    return [*lines, ""]


def _metrics_section(shared: dict[str, Any], metrics: dict[str, Any] | None) -> list[str]:
    if metrics is None:
        return ["## Metrics", "", "No `metrics.json` was found beside the checkpoint.", ""]
    headline = get_task(shared["task"]).headline
    lines = [
        "## Metrics",
        "",
        f"From the run's `metrics.json`, on the {metrics.get('split', 'test')} split "
        f"(`{headline}` chose the best checkpoint on validation):",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [
        f"| {name} | {value:.4g} |" if isinstance(value, float) else f"| {name} | {value} |"
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    if shared["weights"] == "best-ema.pt":
        lines += ["", "The weights shared are the moving average's: theirs are the `ema_` rows."]
    per_class = metrics.get("iou_per_class")
    if isinstance(per_class, list) and len(per_class) == len(shared["class_names"]):
        lines += ["", "| class | IoU |", "|---|---|"]
        lines += [f"| {c} | {v:.4g} |" for c, v in zip(shared["class_names"], per_class)]
    return [*lines, ""]


def _limits_section(shared: dict[str, Any], config: TrainConfig) -> list[str]:
    size = "x".join(str(side) for side in shared["image_size"])
    return [
        "## Intended use and limits",
        "",
        f"- Made to study and reproduce {shared['model']}'s design on `{config.data}`, and as "
        "a starting point for fine-tuning; not evaluated for any decision about people.",
        f"- It knows only its {len(shared['class_names'])} classes: any image gets one of them, "
        "however unlike the training images it is. Images from another source, camera or "
        f"size than the {size} training inputs may score well below the metrics above.",
        f"- The metrics come from one run (seed {config.seed}) on one split; another seed "
        "moves them by a few tenths of a point or more on small data sets.",
        "- Feed it as `cnnzoo.load` does: the same channels, size and normalisation.",
    ]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _numbers(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{value:.4g}" for value in values) + ")"


# --- reading it back ---------------------------------------------------------------------


def read_shared_config(path: Path) -> dict[str, Any]:
    """``config.json`` of an export, checked against what this cnnzoo can build."""
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CnnzooError(f"{path} is not readable JSON: {error}") from None
    required = ("format", "model", "model_options", "task", "class_names", "in_channels")
    missing = [key for key in (*required, "preprocessing") if key not in config]
    if not isinstance(config, dict) or missing:
        raise CnnzooError(f"{path} is not a cnnzoo export config (missing {', '.join(missing)})")
    if not isinstance(config["format"], int) or config["format"] > EXPORT_FORMAT:
        raise CnnzooError(
            f"{path} has export format {config['format']!r}; this cnnzoo reads formats up to "
            f"{EXPORT_FORMAT}. Upgrade cnnzoo to read it"
        )
    entry = get_model_entry(config["model"])  # an unknown name says which models exist
    if entry.task != config["task"]:
        raise CnnzooError(
            f"{path} says {config['model']!r} is a {config['task']} network, but it is a "
            f"{entry.task} network; the file was edited or written by another program"
        )
    return config
