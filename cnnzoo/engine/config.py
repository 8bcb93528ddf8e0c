"""Training configuration: one typed dataclass, a comment per field.

The command line maps its flags onto :class:`TrainConfig`; a YAML file
(``--config FILE.yaml``) may set the same fields, and flags given explicitly
override it. Unknown YAML keys are an error rather than being silently
ignored, so a misspelt ``weight_decy`` cannot train the wrong recipe.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnzoo.errors import CnnzooError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("step", "cosine", "poly", "none")
LOSSES = ("ce", "mse", "dice", "border")
AUGMENTATIONS = ("none", "basic", "affine", "strong")
PRECISIONS = ("fp32", "bf16")
CLASS_WEIGHTS = ("none", "median_frequency")
STEP_UNITS = ("epoch", "iteration")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved as ``config.yaml`` in the run directory."""

    # What to train on what.
    model: str = "lenet5"  # a name from `cnnzoo list`
    data: str = "mnist5k"  # a data set name, or NAME:ARGUMENT such as folder:PATH
    data_dir: str | None = None  # where downloadable data sets live (--data-dir)
    download: bool = False  # fetch a missing data set; never implicit
    image_size: int | None = None  # square input side; None: the size the paper used
    in_channels: int | None = None  # 1 grey, 3 colour; None: what the paper's network took
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. {aux_logits: false}

    # How long.
    epochs: int = 10  # passes over the training split
    iterations: int | None = None  # total optimiser steps; overrides epochs when set (ResNet)
    batch_size: int = 64
    eval_batch_size: int = 256  # inference needs no gradients, so it can take larger batches

    # Optimiser (Krizhevsky 2012 and He 2015 used SGD with momentum 0.9).
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.05  # peak learning rate (after warm-up)
    momentum: float = 0.9  # SGD momentum; Adam's beta1
    nesterov: bool = False  # Nesterov momentum for SGD
    weight_decay: float = 5e-4  # L2 penalty (decoupled for adamw)
    grad_clip: float | None = None  # clip the global gradient norm to this value

    # Learning-rate schedule, evaluated every optimiser step.
    schedule: str = "cosine"  # step | cosine | poly | none
    milestones: list[int] = field(default_factory=list)  # step schedule: where lr *= gamma
    gamma: float = 0.1  # step schedule factor (He 2015: divide by 10)
    step_unit: str = "epoch"  # unit of milestones and warm-up: epoch | iteration
    poly_power: float = 0.9  # poly schedule exponent (Chen et al. 2016, DeepLab v2)
    warmup: int = 0  # linear warm-up length, in step_unit
    min_lr: float = 0.0  # floor of the cosine and poly schedules

    # Loss.
    # ce | mse (one-hot +-1 targets, LeCun 1989) | dice | border (U-Net's weight map, eq. 2)
    loss: str = "ce"
    label_smoothing: float = 0.0  # cross-entropy label smoothing (Szegedy et al. 2016)
    aux_weight: float = 0.3  # weight of auxiliary-head losses (Szegedy et al. 2014, sec. 5)
    class_weights: str = "none"  # none | median_frequency (Badrinarayanan et al. 2015)

    # Data handling.
    # none | basic (shifts, flips where allowed) | affine (+ rotation, scale) | strong (+ erasing)
    augment: str = "basic"
    # Share of the training images held out to pick best.pt where a set has no validation
    # split; a small share leaves more to train on when the test split is fixed (mnist5k).
    val_fraction: float = 0.1
    workers: int = 0  # DataLoader worker processes for data sets not held in memory

    # Numerics and reproducibility.
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    # NHWC memory layout; None: NHWC on CPU, where it trains 1.0-3.3x faster (engine.layout)
    channels_last: bool | None = None
    seed: int = 0  # seeds weights, shuffling, augmentation and validation splits
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU threads for PyTorch; None: its default (one per core)
    sync_bn: bool = False  # under torchrun, batch-norm statistics over the global batch

    # Output.
    out: str | None = None  # run directory; None: runs/MODEL-DATA
    tensorboard: bool = False  # also write TensorBoard event files
    plots: bool = True  # write curves.png and confusion.png at the end (about a second)
    log_grad_norms: int | None = None  # record per-layer gradient norms every N steps
    quiet: bool = False  # no progress bar or per-epoch lines

    def validate(self) -> None:
        """Raise a :class:`CnnzooError` for values no run could use."""
        choices = {
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
            "loss": LOSSES,
            "augment": AUGMENTATIONS,
            "precision": PRECISIONS,
            "class_weights": CLASS_WEIGHTS,
            "step_unit": STEP_UNITS,
            "device": DEVICES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise CnnzooError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        positive = ("epochs", "batch_size", "eval_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise CnnzooError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("iterations", "image_size", "in_channels", "log_grad_norms", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CnnzooError(f"{name} must be at least 1, got {value}")
        if self.lr <= 0:
            raise CnnzooError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise CnnzooError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise CnnzooError(f"grad_clip must be positive, got {self.grad_clip}")
        if not 0.0 < self.val_fraction < 0.5:
            raise CnnzooError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if self.workers < 0 or self.warmup < 0:
            raise CnnzooError("workers and warmup cannot be negative")
        if sorted(self.milestones) != list(self.milestones):
            raise CnnzooError(f"milestones must be increasing, got {self.milestones}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainConfig))
# Fields a resumed run may change: how long it runs and how it reports, not what it learns.
RESUMABLE_FIELDS = (
    "epochs",
    "iterations",
    "workers",
    "quiet",
    "tensorboard",
    "plots",
    "log_grad_norms",
    "data_dir",
    "download",
    "device",
    "threads",
    "out",
)


def config_from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """A config with ``values`` set over ``base`` (defaults), each checked against its type."""
    unknown = [key for key in values if key not in FIELD_NAMES]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, FIELD_NAMES, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise CnnzooError(
            f"unknown configuration key(s): {', '.join(hints)}; "
            f"known keys: {', '.join(FIELD_NAMES)}"
        )
    hints_by_name = typing.get_type_hints(TrainConfig)
    checked = {key: _coerce(key, value, hints_by_name[key]) for key, value in values.items()}
    config = dataclasses.replace(base or TrainConfig(), **checked)
    config.validate()
    return config


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML recipe, or a clear error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise CnnzooError(f"configuration file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise CnnzooError(f"{path} is not valid YAML: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise CnnzooError(f"{path} must hold a mapping of configuration keys to values")
    return values


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's annotation; ints are accepted where floats are."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise CnnzooError(f"{name} cannot be empty")
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool, dict) and isinstance(value, origin):
            return value
        if origin is list and isinstance(value, list | tuple):
            (item_type,) = typing.get_args(kind)
            if all(isinstance(v, item_type) and not isinstance(v, bool) for v in value):
                return list(value)
    expected = " or ".join(getattr(k, "__name__", str(k)) for k in allowed if k is not type(None))
    raise CnnzooError(f"{name} must be {expected}, got {value!r}")


def save_config(config: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
