"""The model card of an exported network: the ``README.md`` beside its weights.

A model card (Mitchell et al. 2019, "Model Cards for Model Reporting",
arXiv:1810.03993) says what the network is, the recipe and the data it was
trained on, its metrics, the command that trains it again
(:func:`train_command`), the paper and the limits of its use.
:func:`cnnzoo.inference.export.export_shared` writes it.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence
from typing import Any

import yaml

from cnnzoo.models.registry import get_model_entry
from cnnzoo.runs.config import TrainConfig
from cnnzoo.tasks import get_task

# Fields of a recipe that say where this machine keeps things, not how the network was trained.
LOCAL_FIELDS = ("out", "data_dir")

# What each checkpoint a run writes holds, as the model card says it.
CHECKPOINT_WEIGHTS = {
    "best.pt": "the epoch that scored best on the validation split",
    "best-ema.pt": "the moving average of the weights (--model-ema) at its best on validation",
    "last.pt": "the last epoch",
}


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
    normalize = (
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
        f"- Input: {channels}, {resize}, {normalize}.",
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
