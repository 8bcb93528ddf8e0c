"""Weights that ship inside the package: cnnzoo's own trained networks, loaded offline.

``create_model("resnet20", pretrained="cifar10")`` comes here. Each network
with shipped weights has two files in :data:`SHIPPED_FOLDER`:

* ``NAME-cifar10.safetensors``: its state dict (safetensors holds tensors and
  nothing else, so loading runs no code);
* ``NAME-cifar10.json``: its model card as data: the class names, the mean,
  std and input size it was trained with, the command that trained it, its
  test accuracy beside the paper's, and *recorded outputs*: the logits on a
  few inputs generated from a seed (:func:`reference_inputs`), so that any
  installation can check that it computes what the trained network computed.

A ``NAME-cifar10.md`` beside them is the card in words. Nothing is ever
downloaded. :func:`write_shipped` writes the three files from a state dict;
:func:`cnnzoo.inference.export.ship_run` (``python -m cnnzoo.inference.export
RUN --name resnet20``) does so from a finished run.

CIFAR-10 is Krizhevsky's data set ("Learning Multiple Layers of Features from
Tiny Images", 2009), collected for research; weights trained on it inherit
its terms of use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import create_model, get_model_entry

# The pretrained sources whose files ship in the package; the data set each was trained on.
SHIPPED_SOURCES = ("cifar10",)
# Where the shipped files are; tests point it at a folder of their own.
SHIPPED_FOLDER = Path(__file__).resolve().parent / "trained"
SHIPPED_FORMAT = 1  # the JSON's "format"; a reader refuses newer ones by number
# The inputs whose outputs each file records: few, small, and the same on every machine.
RECORDED_SEED = 0
RECORDED_COUNT = 4
# What the JSON must give, beyond what write_shipped adds itself.
REQUIRED_FACTS = (
    "class_names",
    "mean",
    "std",
    "image_size",
    "command",
    "test_accuracy",
    "paper_accuracy",
)
DATA_NOTE = (
    "CIFAR-10 is the data set of Krizhevsky, 'Learning Multiple Layers of Features from Tiny "
    "Images' (2009): 60,000 32x32 colour images of 10 classes, collected for research. These "
    "weights were trained on it and are shared for research under its terms of use."
)
StateDict = dict[str, Tensor]


def shipped_folder() -> Path:
    """The folder the shipped weights are read from (:data:`SHIPPED_FOLDER`)."""
    return SHIPPED_FOLDER


def shipped_paths(
    name: str, source: str = "cifar10", folder: Path | None = None
) -> tuple[Path, Path]:
    """``(weights, record)``: where ``name``'s shipped ``source`` weights are, e.g.
    ``resnet20-cifar10.safetensors`` and ``resnet20-cifar10.json``."""
    folder = shipped_folder() if folder is None else folder
    return folder / f"{name}-{source}.safetensors", folder / f"{name}-{source}.json"


def models_with_shipped_weights(source: str = "cifar10") -> list[str]:
    """Networks whose ``source`` weights ship in the package (both files present), by name."""
    suffix = f"-{source}.safetensors"
    names = [p.name[: -len(suffix)] for p in shipped_folder().glob(f"*{suffix}")]
    return sorted(n for n in names if shipped_paths(n, source)[1].is_file())


def _check_shipped(name: str, source: str) -> tuple[Path, Path]:
    """The two files of ``name``'s shipped weights, or one line naming the networks with some."""
    if source not in SHIPPED_SOURCES:
        raise CnnzooError(
            f"unknown shipped weights {source!r}; cnnzoo ships: {', '.join(SHIPPED_SOURCES)}"
        )
    weights, record = shipped_paths(name, source)
    if not (weights.is_file() and record.is_file()):
        having = ", ".join(models_with_shipped_weights(source)) or "none yet"
        raise CnnzooError(
            f"{name!r} has no {source} weights shipped with cnnzoo; networks that have: {having}"
        )
    return weights, record


def read_record(name: str, source: str = "cifar10") -> dict[str, Any]:
    """``NAME-SOURCE.json``: the facts of ``name``'s shipped weights, checked."""
    _, path = _check_shipped(name, source)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CnnzooError(f"{path} is not readable JSON: {error}") from None
    missing = [key for key in (*REQUIRED_FACTS, "format", "recorded_outputs") if key not in record]
    if missing:
        raise CnnzooError(f"{path} is no shipped weights record (missing {', '.join(missing)})")
    if not isinstance(record["format"], int) or record["format"] > SHIPPED_FORMAT:
        raise CnnzooError(
            f"{path} has format {record['format']!r}; this cnnzoo reads formats up to "
            f"{SHIPPED_FORMAT}. Upgrade cnnzoo to read it"
        )
    return record


def read_shipped(name: str, source: str = "cifar10") -> tuple[Path, StateDict]:
    """``name``'s shipped state dict and the file it was read from."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path, _ = _check_shipped(name, source)
    try:
        return path, load_file(path)
    except (OSError, SafetensorError) as error:
        raise CnnzooError(f"cannot read the weights in {path}: {error}") from None


def shipped_num_classes(name: str, source: str = "cifar10") -> int:
    """How many classes ``name``'s shipped weights tell apart (10 for CIFAR-10)."""
    return len(read_record(name, source)["class_names"])


def shipped_preprocessing(name: str, source: str = "cifar10") -> dict[str, Any]:
    """How ``name``'s shipped weights expect their images, and the classes they name.

    The keys of :func:`cnnzoo.models.weights.pretrained_preprocessing`
    (``crop_size`` the trained input size, no resize: the images are fed at
    that size) and ``class_names``.
    """
    record = read_record(name, source)
    height, width = record["image_size"]
    if height != width:
        raise CnnzooError(f"{name}'s {source} weights were trained on non-square inputs")
    return {
        "mean": list(record["mean"]),
        "std": list(record["std"]),
        "resize_size": None,
        "crop_size": height,
        "interpolation": "bilinear",
        "class_names": list(record["class_names"]),
    }


def reference_inputs(
    seed: int = RECORDED_SEED, count: int = RECORDED_COUNT, size: tuple[int, int] = (32, 32)
) -> Tensor:
    """``count`` normalized RGB inputs drawn from ``seed``: the same tensor on every machine."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 3, *size, generator=generator)


def recorded_difference(model: nn.Module, record: dict[str, Any]) -> float:
    """The largest difference between ``model``'s logits and those ``record`` holds."""
    recorded = record["recorded_outputs"]
    inputs = reference_inputs(recorded["seed"], recorded["count"], tuple(record["image_size"]))
    expected = torch.tensor(recorded["logits"], dtype=torch.float32)
    with torch.no_grad():
        actual = model.eval()(inputs).float()
    if actual.shape != expected.shape:
        raise CnnzooError(
            f"the network gives outputs of shape {tuple(actual.shape)}, the record "
            f"{tuple(expected.shape)}"
        )
    return float((actual - expected).abs().max())


def write_shipped(
    name: str,
    weights: StateDict,
    facts: dict[str, Any],
    *,
    source: str = "cifar10",
    folder: Path | None = None,
) -> tuple[Path, Path, Path]:
    """Write ``name``'s shipped weights: the safetensors, the JSON record and the card.

    ``facts`` gives :data:`REQUIRED_FACTS` (and may add more, e.g. ``data``,
    ``epochs``); the network is rebuilt from ``weights`` to record its
    outputs on :func:`reference_inputs`. Returns the three paths written.
    """
    from safetensors.torch import save

    missing = [key for key in REQUIRED_FACTS if key not in facts]
    if missing:
        raise CnnzooError(f"shipped weights need {', '.join(missing)}")
    if source not in SHIPPED_SOURCES:
        raise CnnzooError(f"unknown shipped source {source!r}; use: {', '.join(SHIPPED_SOURCES)}")
    entry = get_model_entry(name)  # an unknown name says which models exist
    model = create_model(name, num_classes=len(facts["class_names"]))
    model.load_state_dict(weights, strict=True)
    record = {
        "format": SHIPPED_FORMAT,
        "model": name,
        "source": source,
        "paper": entry.paper,
        **facts,
        "data_note": DATA_NOTE,
    }
    inputs = reference_inputs(size=tuple(facts["image_size"]))
    with torch.no_grad():
        logits = model.eval()(inputs).float()
    record["recorded_outputs"] = {
        "seed": RECORDED_SEED,
        "count": RECORDED_COUNT,
        "logits": logits.tolist(),
    }
    folder = shipped_folder() if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    weights_path, record_path = shipped_paths(name, source, folder)
    tensors = {key: value.detach().contiguous().clone() for key, value in weights.items()}
    weights_path.write_bytes(save(tensors, metadata={"format": "pt"}))
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    card_path = record_path.with_suffix(".md")
    card_path.write_text(shipped_card(record))
    return weights_path, record_path, card_path


def shipped_card(record: dict[str, Any]) -> str:
    """``NAME-SOURCE.md``: the shipped weights in words: use, data, accuracy, command."""
    name, source = record["model"], record["source"]
    measured = _percent(record["test_accuracy"])
    paper = _percent(record["paper_accuracy"])
    lines = [
        f"# {name} trained on {source}",
        "",
        f"{name} ({record['paper']}), trained by cnnzoo on {record.get('data', source)} "
        f"at {'x'.join(str(side) for side in record['image_size'])}.",
        "",
        "```python",
        "from cnnzoo.models import create_model",
        "",
        f'model = create_model("{name}", pretrained="{source}")',
        "```",
        "",
        f"Test accuracy: {measured} (the paper reports {paper}).",
        "",
        "Trained with:",
        "",
        "```",
        record["command"],
        "```",
        "",
        "## Data",
        "",
        record["data_note"],
        "",
    ]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "not measured" if value is None else f"{100 * value:.2f} %"
