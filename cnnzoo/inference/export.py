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
* ``README.md``: a model card (:mod:`cnnzoo.inference.model_card`).

:meth:`~cnnzoo.inference.predictor.Predictor.from_export` (``cnnzoo.load``)
reads such a folder back, checked by :func:`read_shared_config`.

:func:`ship_run` (``python -m cnnzoo.inference.export RUN --name resnet20``)
turns a finished CIFAR-10 run into the weights that ship inside the package
(:mod:`cnnzoo.models.weights.shipped`), loaded by
``create_model("resnet20", pretrained="cifar10")``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnzoo.errors import CnnzooError
from cnnzoo.inference.model_card import model_card, train_command
from cnnzoo.models.registry import get_model_entry
from cnnzoo.models.weights.shipped import write_shipped
from cnnzoo.runs.checkpoint import Checkpoint, own_options
from cnnzoo.runs.directory import checkpoint_path

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)
EXPORT_FORMAT = 1  # config.json's "format"; a reader refuses newer ones by number
# He et al. 2016 (arXiv:1512.03385), Table 6: CIFAR-10 test accuracy, 100 % less the error.
PAPER_CIFAR10_ACCURACY = {
    "resnet20": 0.9125,
    "resnet32": 0.9249,
    "resnet44": 0.9283,
    "resnet56": 0.9303,
    "resnet110": 0.9357,
    "resnet1202": 0.9207,
}


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


# --- weights that ship in the package -------------------------------------------------------


def ship_run(
    location: str | Path,
    name: str,
    *,
    paper_accuracy: float | None = None,
    folder: Path | None = None,
) -> tuple[Path, Path, Path]:
    """Write a finished run's best weights as ``name``'s shipped CIFAR-10 weights.

    The run's test accuracy comes from its ``metrics.json`` (the test split's
    top-1); the paper's from :data:`PAPER_CIFAR10_ACCURACY` unless given.
    ``folder`` defaults to the package's shipped folder. Returns the paths written.
    """
    path = shared_checkpoint(location)
    checkpoint = Checkpoint.load(path)
    if checkpoint.model_name != name:
        raise CnnzooError(f"{path} holds {checkpoint.model_name!r}, not {name!r}")
    if checkpoint.task != "classification" or checkpoint.in_channels != 3:
        raise CnnzooError(f"{path}: shipped weights are classifiers of RGB images")
    if own_options(checkpoint.recipe.model_options):
        raise CnnzooError(f"{path}: shipped weights are of the network as built, without options")
    metrics_path = path.parent / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if metrics.get("split") != "test" or "top1" not in metrics:
        raise CnnzooError(
            f"{path.parent} has no test accuracy in metrics.json; shipped weights state theirs"
        )
    normalization = checkpoint.normalization
    channels = checkpoint.in_channels
    facts = {
        "class_names": list(checkpoint.class_names),
        "mean": list(normalization.mean) if normalization else [0.0] * channels,
        "std": list(normalization.std) if normalization else [1.0] * channels,
        "image_size": list(checkpoint.image_size),
        "data": checkpoint.recipe.data,
        "epochs": checkpoint.epoch,
        "command": train_command(checkpoint.recipe),
        "test_accuracy": metrics["top1"],
        "paper_accuracy": paper_accuracy or PAPER_CIFAR10_ACCURACY.get(name),
    }
    return write_shipped(name, dict(checkpoint.weights), facts, folder=folder)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cnnzoo.inference.export RUN --name NAME``: ship a run's weights."""
    parser = argparse.ArgumentParser(
        prog="python -m cnnzoo.inference.export",
        description="Write a finished CIFAR-10 run as weights that ship in the package.",
    )
    parser.add_argument("run", type=Path, help="the run directory (or a checkpoint file)")
    parser.add_argument("--name", required=True, help="the network, e.g. resnet20")
    parser.add_argument("--paper-accuracy", type=float, help="the paper's test accuracy (0-1)")
    parser.add_argument("--folder", type=Path, help="where to write (default: the package's)")
    args = parser.parse_args(argv)
    try:
        written = ship_run(
            args.run, args.name, paper_accuracy=args.paper_accuracy, folder=args.folder
        )
    except CnnzooError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
