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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cnnzoo.errors import CnnzooError
from cnnzoo.inference.model_card import model_card
from cnnzoo.models.registry import get_model_entry
from cnnzoo.runs.checkpoint import Checkpoint, own_options
from cnnzoo.runs.directory import checkpoint_path

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)
EXPORT_FORMAT = 1  # config.json's "format"; a reader refuses newer ones by number


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
