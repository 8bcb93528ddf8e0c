"""Checkpoints: everything needed to use a network or to resume its training exactly.

A :class:`Checkpoint` is the typed record of one: the network (model name,
task, class names, the recipe, its weights), how to feed it (one
:class:`~cnnzoo.data.preprocessing.Preprocessing`) and what its run measured.
Only ``last.pt`` also carries a :class:`TrainingState` (optimizer, schedule,
grad scaler, moving average, random states, where an interrupted epoch
stopped); ``best.pt`` and ``best-ema.pt`` hold what is needed to use the
network and stay the size of its weights.

On disk a checkpoint is a plain dictionary of tensors, numbers, strings,
lists and dicts -- no pickled objects -- so it loads with
``torch.load(weights_only=True)`` and a file carrying code is refused instead
of executed. Its ``format`` says how to read it: a format-1 file (written
before the record was typed: channels, size and normalization at the top
level and again under ``preprocessing``, the training state beside the
weights) is upgraded in memory when read (:func:`upgrade`). Before any
weights are used, the checkpoint is checked against what this installation
can build (a registered model, its task, a list of class names, tensors whose
names and shapes fit the network), so a mismatch is a clear error rather than
a crash or silently wrong predictions. It is written to a temporary file in
the same directory, flushed to disk and renamed over the old one (then the
directory itself is flushed, so the rename survives a power cut), so a crash
at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cnnzoo.data import source_name
from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import get_model_entry
from cnnzoo.runs.config import TrainConfig, config_from_dict
from cnnzoo.runs.plan import data_request

FORMAT_VERSION = 2
# What every format names at its top level: without these a file is no cnnzoo checkpoint.
REQUIRED_KEYS = ("format", "model_name", "task", "class_names", "config")


@dataclass(frozen=True)
class TrainingState:
    """What resuming a run needs beyond its weights; only ``last.pt`` carries it."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]  # :func:`capture_rng_state`
    grad_scaler: dict[str, Any] | None = None  # float16 training's loss scale
    model_ema: dict[str, Any] | None = None  # the moving average's state dict (--model-ema)
    epoch_progress: dict[str, Any] | None = None  # where a signal stopped the run in an epoch

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingState:
        return cls(**{f.name: values.get(f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Checkpoint:
    """A trained network as a run saved it: the network, how to feed it, what was measured."""

    model_name: str  # registry name (a module's class name for a network no entry describes)
    task: str  # "classification" or "segmentation"
    class_names: list[str]
    config: dict[str, Any]  # the recipe, as TrainConfig.to_dict() writes it
    weights: dict[str, Tensor]  # the network's state dict
    preprocessing: Preprocessing  # channels, size, crop and normalization, as evaluation fed it
    image_size: tuple[int, int]  # (H, W) the network trained on; segmentation evaluates any size
    ignore_index: int | None = None  # the target value that counts as no class
    head: tuple[str, ...] = ()  # the tensors that started fresh (fine-tuning)
    epoch: int = 0  # completed epochs
    step: int = 0  # completed optimizer steps
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch (log.csv)
    best_score: float = -math.inf  # the best validation headline of the raw weights
    best_ema_score: float = -math.inf  # the moving average's best (best-ema.pt's weights)
    train_seconds: float = 0.0  # wall time of training and validation, over all sessions
    compute_seconds: float = 0.0  # time inside training steps only
    train_images: int = 0  # images trained on, over all sessions
    training: TrainingState | None = None  # only in last.pt

    @property
    def in_channels(self) -> int:
        return self.preprocessing.channels

    @property
    def normalization(self) -> Normalization | None:
        return self.preprocessing.normalization

    @property
    def recipe(self) -> TrainConfig:
        """The run's configuration as a :class:`~cnnzoo.runs.config.TrainConfig`."""
        return config_from_dict(self.config)

    def describe(self) -> str:
        """The network in a message: its name and how many classes it tells apart."""
        return f"{self.model_name!r} with {len(self.class_names)} classes"

    def without_training(self) -> Checkpoint:
        """Only what is needed to use the network: what ``best.pt`` holds."""
        return dataclasses.replace(self, training=None)

    def to_dict(self) -> dict[str, Any]:
        """The on-disk form: plain data and tensors only, read back by :meth:`from_dict`."""
        return {
            "format": FORMAT_VERSION,
            "model_name": self.model_name,
            "task": self.task,
            "class_names": list(self.class_names),
            "config": self.config,
            "weights": self.weights,
            "preprocessing": self.preprocessing.to_dict(),
            "image_size": list(self.image_size),
            "ignore_index": self.ignore_index,
            "head": list(self.head),
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history,
            "best_score": self.best_score,
            "best_ema_score": self.best_ema_score,
            "train_seconds": self.train_seconds,
            "compute_seconds": self.compute_seconds,
            "train_images": self.train_images,
            "training": self.training.to_dict() if self.training is not None else None,
        }

    @classmethod
    def from_dict(
        cls, payload: dict[str, Any], source: Path | str = "the checkpoint"
    ) -> Checkpoint:
        """The record of an on-disk dictionary of any format this cnnzoo reads."""
        version = payload.get("format")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise CnnzooError(
                f"{source} has checkpoint format {version!r}; this cnnzoo reads formats 1 to "
                f"{FORMAT_VERSION}. Upgrade cnnzoo to read newer checkpoints"
            )
        if version == 1:
            payload = upgrade(payload)
        _check_fields(payload, source)
        training = payload.get("training")
        return cls(
            model_name=payload["model_name"],
            task=payload["task"],
            class_names=list(payload["class_names"]),
            config=payload["config"],
            weights=payload["weights"],
            preprocessing=Preprocessing.from_dict(payload["preprocessing"]),
            image_size=tuple(payload["image_size"]),  # type: ignore[arg-type]
            ignore_index=payload.get("ignore_index"),
            head=tuple(payload.get("head") or ()),
            epoch=payload.get("epoch", 0),
            step=payload.get("step", 0),
            history=list(payload.get("history") or []),
            best_score=payload.get("best_score", -math.inf),
            best_ema_score=payload.get("best_ema_score", -math.inf),
            train_seconds=payload.get("train_seconds", 0.0),
            compute_seconds=payload.get("compute_seconds", 0.0),
            train_images=payload.get("train_images", 0),
            training=TrainingState.from_dict(training) if training is not None else None,
        )

    def save(self, path: Path) -> None:
        """Write the checkpoint to ``path`` atomically (:func:`save_checkpoint`)."""
        save_checkpoint(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path | str, *, registered: bool = True) -> Checkpoint:
        """Read a checkpoint safely (tensors and plain data only) and check it.

        ``path`` is a ``.pt`` file or a run directory (its ``best.pt``, else
        ``last.pt``). ``registered=False`` reads the checkpoint of a network
        no registry entry describes (an experiment's own module), which
        cannot be checked against the registry.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
        if not path.is_file():
            raise CnnzooError(f"no checkpoint at {path}; give a run directory or a .pt file")
        payload = _read_plain(path)
        if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
            raise CnnzooError(f"{path} is not a cnnzoo checkpoint (expected keys {REQUIRED_KEYS})")
        checkpoint = cls.from_dict(payload, path)
        if registered:
            checkpoint.check_registered(path)
        return checkpoint

    def check_registered(self, source: Path | str) -> None:
        """Refuse a checkpoint of a model this cnnzoo lacks, or of another task than its own."""
        try:
            entry = get_model_entry(self.model_name)
        except CnnzooError as error:
            raise CnnzooError(
                f"{source} was written for a model this cnnzoo lacks: {error}"
            ) from None
        if self.task != entry.task:
            raise CnnzooError(
                f"{source} says {self.model_name!r} is a {self.task!r} network, but it is a "
                f"{entry.task} network; the file was edited or written by another program"
            )


def upgrade(payload: dict[str, Any]) -> dict[str, Any]:
    """A format-1 dictionary in the form of format 2.

    Format 1 kept the weights under ``model``, the training state beside
    them in every file, and channels, size and normalization at the top
    level; a file written before it recorded ``preprocessing`` is read as
    evaluation prepared images then (:func:`format1_preprocessing`).
    """
    optimizer = payload.get("optimizer")
    training = (
        {
            "optimizer": optimizer,
            "scheduler": payload.get("scheduler"),
            "rng": payload.get("rng"),
            "grad_scaler": payload.get("grad_scaler"),
            "model_ema": payload.get("model_ema"),
            "epoch_progress": payload.get("epoch_progress"),
        }
        if optimizer is not None
        else None
    )
    moved = ("model", "in_channels", "normalization", "optimizer", "scheduler", "rng")
    moved += ("grad_scaler", "model_ema", "epoch_progress")
    kept = {key: value for key, value in payload.items() if key not in moved}
    preprocessing = format1_preprocessing(payload)
    size = payload.get("image_size") or preprocessing.size or _paper_size(payload)
    return {
        **kept,
        "format": FORMAT_VERSION,
        "weights": payload.get("model"),
        "preprocessing": preprocessing.to_dict(),
        "image_size": list(size),
        "training": training,
    }


def format1_preprocessing(payload: dict[str, Any]) -> Preprocessing:
    """How the run of a format-1 ``payload`` prepared images for evaluation.

    Its ``preprocessing`` where it recorded one; else read from its fields:
    segmentation at each image's own size, classification resized to the
    training size, the centre crop of ``crop_ratio`` only where the run asked
    to stream.
    """
    if payload.get("preprocessing") is not None:
        return Preprocessing.from_dict(payload["preprocessing"])
    channels = payload.get("in_channels") or _paper_input(payload)[0]
    stats = payload.get("normalization")
    normalization = Normalization(tuple(stats["mean"]), tuple(stats["std"])) if stats else None
    if payload["task"] != "classification":
        return Preprocessing(channels, None, None, normalization)
    size = tuple(payload.get("image_size") or _paper_size(payload))
    config = config_from_dict(payload["config"]) if isinstance(payload["config"], dict) else None
    streamed = (
        config is not None and config.data_mode == "stream" and source_name(config.data) == "folder"
    )
    crop_ratio = data_request(config, size, channels).crop_ratio if streamed else None
    return Preprocessing(channels, size, crop_ratio, normalization)  # type: ignore[arg-type]


def _paper_input(payload: dict[str, Any]) -> tuple[int, int, int]:
    """The registry's input size of the payload's model: what a file that names none used."""
    try:
        return get_model_entry(str(payload["model_name"])).input_size
    except CnnzooError:
        return (3, 224, 224)


def _paper_size(payload: dict[str, Any]) -> tuple[int, int]:
    _, height, width = _paper_input(payload)
    return height, width


def _check_fields(payload: dict[str, Any], source: Path | str) -> None:
    """Check what a format-2 dictionary says about itself before anything is built from it."""
    name = payload["model_name"]
    if not isinstance(name, str):
        raise CnnzooError(f"{source} names no model (model_name is {name!r})")
    classes = payload["class_names"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise CnnzooError(f"{source} must list its class names as strings, got {classes!r}")
    weights = payload.get("weights")
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise CnnzooError(f"{source} holds no state dict of named tensors as its weights")
    if not isinstance(payload["config"], dict):
        raise CnnzooError(f"{source} holds no training configuration under 'config'")
    if not isinstance(payload.get("preprocessing"), dict):
        raise CnnzooError(f"{source} says nothing of how to prepare its images")


def _read_plain(path: Path) -> Any:
    """``torch.load(weights_only=True)`` of ``path``, its refusals as clear errors."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickler_reason(str(error))
        if "global" in reason.lower():
            raise CnnzooError(
                f"{path} is refused: it holds Python objects, not only tensors and plain data "
                f"({reason}); only load checkpoints from sources you trust"
            ) from None
        raise CnnzooError(f"{path} is not a readable checkpoint ({reason})") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CnnzooError(f"{path} is not a readable checkpoint: {error}") from None


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def load_weights(model: nn.Module, weights: dict[str, Tensor], source: Path, network: str) -> None:
    """Load ``weights`` (read from ``source``, of ``network``), or explain which do not fit."""
    problems = weight_mismatches(model.state_dict(), weights)
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        shown = "; ".join(problems[:3]) + more
        raise CnnzooError(
            f"the weights in {source} do not fit {network} as built here ({shown}); was the "
            "checkpoint written by another model, options or version?"
        )
    model.load_state_dict(weights)


def weight_mismatches(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What keeps ``found`` from loading into a model whose state dict is ``expected``."""
    problems = [f"{name} is missing" for name in expected if name not in found]
    problems += [f"{name} is not part of the network" for name in found if name not in expected]
    problems += [
        f"{name} is {list(found[name].shape)} in the file but {list(tensor.shape)} here"
        for name, tensor in expected.items()
        if name in found and found[name].shape != tensor.shape
    ]
    return problems


def capture_rng_state() -> dict[str, Any]:
    """The state of every random generator training touches, as plain data."""
    _, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unpickler_reason(message: str) -> str:
    """The one informative sentence of PyTorch's long weights-only refusal.

    It is either a paragraph of its own ("Trying to load unsupported GLOBAL
    posix.system whose module posix is blocked.") or follows "WeightsUnpickler
    error:" ("Unsupported global: GLOBAL io.open was not an allowed global by
    default"), followed by advice to allow-list the global, which is exactly
    what a user must not do with a file that asks for it.
    """
    _, found, detail = message.partition("WeightsUnpickler error:")
    if found:
        return detail.strip().split("\n")[0].split(". ")[0].strip() or "unsupported content"
    paragraphs = [p.strip() for p in message.split("\n\n") if p.strip()]
    details = [
        p
        for p in paragraphs
        if not p.startswith(("Weights only load failed", "Check the documentation"))
    ]
    return details[0] if details else "unsupported content"


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (POSIX; Windows has no directory handles)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def own_options(options: dict[str, Any]) -> dict[str, Any]:
    """A run's model options without ``pretrained`` (an older way to ask for the weights)."""
    return {key: value for key, value in options.items() if key != "pretrained"}
