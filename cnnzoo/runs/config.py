"""Training configuration: one typed dataclass, a help text per field.

The command line generates its ``train`` flags from :class:`TrainConfig`'s
fields, help texts and defaults included; a YAML file (``--config FILE.yaml``)
may set the same fields, and flags given explicitly override it. Unknown YAML
keys are an error rather than being silently ignored, so a misspelt
``weight_decy`` cannot train the wrong recipe.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnzoo.errors import CnnzooError
from cnnzoo.models.weights.hub import PRETRAINED_SOURCES

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("step", "cosine", "poly", "none")
LOSSES = ("ce", "mse", "dice", "border")
AUGMENTATIONS = ("none", "basic", "pad-crop", "affine", "strong", "scale-crop")
PRECISIONS = ("fp32", "bf16", "fp16")
AUTO_AUGMENTS = ("none", "autoaugment", "randaugment", "trivialaugment")
CLASS_WEIGHTS = ("none", "median_frequency")
STEP_UNITS = ("epoch", "iteration")
WARMUP_SHAPES = ("linear", "constant")
DEVICES = ("auto", "cpu", "cuda")
DATA_MODES = ("auto", "memory", "stream")


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    resumable: bool = False,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A :class:`TrainConfig` field with the facts about it written once.

    ``help`` is the text ``cnnzoo train --help`` shows beside the flag (the
    command line generates its flags from these fields); ``choices`` are the
    only values allowed; ``resumable`` fields may change when a run is resumed;
    ``parse`` turns the text of a flag (or a YAML string) into the field's value.
    """
    metadata = {"help": help, "choices": choices, "resumable": resumable, "parse": parse}
    if isinstance(default, list | dict):  # a fresh container per config, never a shared one
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=metadata)
    return field(default=default, metadata=metadata)


# Evaluating U-Net at 572x572 in batches of 256 ran a 24 GB machine out of memory; 2 GB of
# activations leaves room for the weights and the data on a small GPU or a laptop.
EVAL_MEMORY_MB = 2048

# --image-size paper: the input size the network's paper used (its registry entry).
PAPER_SIZE = "paper"


def parse_image_size(text: str) -> int | list[int] | str:
    """``"180,240"`` -> [180, 240] (H, W); ``"224"`` -> 224; ``"paper"`` stays itself."""
    if text.strip().lower() == PAPER_SIZE:
        return PAPER_SIZE
    try:
        sides = [int(part) for part in text.replace("x", ",").split(",")]
    except ValueError:
        raise CnnzooError(
            f"image_size must be H,W (e.g. 180,240), one side (e.g. 224) or 'paper'; got {text!r}"
        ) from None
    if len(sides) > 2:
        raise CnnzooError(f"image_size takes at most two sides (H,W), got {text!r}")
    return sides[0] if len(sides) == 1 else sides


def image_size_pair(value: int | list[int] | str | None) -> tuple[int, int] | None:
    """The configured (H, W); None where it is unset or 'paper' (the caller decides)."""
    if value is None or value == PAPER_SIZE:
        return None
    if isinstance(value, int):
        return (value, value)
    height, width = value
    return (height, width)


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved as ``config.yaml`` in the run directory."""

    # What to train on what.
    model: str = setting("lenet5", "a model from `cnnzoo list`")
    data: str = setting(
        "mnist5k", "a data set name, or NAME:ARGUMENT such as folder:PATH for your own images"
    )
    data_dir: str | None = setting(
        None,
        "where downloadable data sets live (unset: $CNNZOO_DATA or ~/.cache/cnnzoo/data)",
        resumable=True,
    )
    download: bool = setting(False, "fetch a missing data set; never implicit", resumable=True)
    # A string on the command line ("180,240", "224", "paper"), an int or [H, W] in YAML.
    image_size: str | int | list[int] | None = setting(
        None,
        "training input H,W, or one side S for SxS, or 'paper' for the size the paper used "
        "(unset: segmentation trains at the data's own size, classification at the paper's)",
        parse=parse_image_size,
    )
    in_channels: int | None = setting(
        None, "1 grey, 3 colour (unset: the data's own)", choices=(1, 3)
    )
    model_options: dict[str, Any] = setting(
        {}, "constructor option KEY=VALUE, e.g. aux_logits=false (repeatable)"
    )

    # Where the weights start (unset: a fresh initialisation). Fine-tuning starts from
    # weights trained on more data; the head for the new classes starts fresh either way.
    pretrained: str | None = setting(
        None,
        "start from torchvision's ImageNet weights (imagenet: the backbone's only, for "
        "segmentation) or cnnzoo's shipped CIFAR-10 weights (cifar10); their mean, std and "
        "input size become the run's defaults",
        choices=PRETRAINED_SOURCES,
    )
    init_from: str | None = setting(
        None,
        "start from the weights of a cnnzoo run directory or .pt file; tensors whose shape "
        "differs start fresh (its optimiser and epoch are not taken: that is --resume)",
    )
    freeze_backbone: bool = setting(
        False, "train only the fresh head (with --pretrained or --init-from)"
    )
    head_lr_scale: float = setting(
        1.0, "the fresh head's learning rate is this times --lr (with --pretrained or --init-from)"
    )

    # How long.
    epochs: int = setting(10, "passes over the training split", resumable=True)
    iterations: int | None = setting(
        None, "total optimiser steps; overrides --epochs when set (ResNet)", resumable=True
    )
    batch_size: int = setting(64, "images per optimiser step")
    eval_batch_size: int | None = setting(
        None, "images per step when evaluating (unset: as many as --eval-memory-mb allows)"
    )
    eval_memory_mb: int = setting(
        EVAL_MEMORY_MB, "activation memory evaluation may hold; picks an unset --eval-batch-size"
    )

    # Optimiser (Krizhevsky 2012 and He 2015 used SGD with momentum 0.9).
    optimizer: str = setting("sgd", "optimiser", choices=OPTIMIZERS)
    lr: float = setting(0.05, "peak learning rate (after warm-up)")
    momentum: float = setting(0.9, "SGD momentum; Adam's beta1")
    nesterov: bool = setting(False, "Nesterov momentum for SGD")
    weight_decay: float = setting(5e-4, "L2 penalty (decoupled for adamw)")
    grad_clip: float | None = setting(
        None, "clip the global gradient norm to this value (unset: no clipping)"
    )

    # Learning-rate schedule, evaluated every optimiser step.
    schedule: str = setting("cosine", "learning-rate schedule", choices=SCHEDULES)
    milestones: list[int] = setting(
        [], "step schedule: where lr *= gamma, comma-separated, e.g. 32000,48000"
    )
    gamma: float = setting(0.1, "step schedule factor (He 2015: divide by 10)")
    step_unit: str = setting("epoch", "unit of milestones and warm-up", choices=STEP_UNITS)
    poly_power: float = setting(0.9, "poly schedule exponent (Chen et al. 2016, DeepLab v2)")
    warmup: int = setting(0, "warm-up length, in --step-unit")
    # He et al. 2015 (sec. 4.2) start ResNet-110 at a constant 0.01, a tenth of the peak,
    # "until the training error is below 80% (about 400 iterations)"; Goyal et al. 2017
    # ramp linearly from near zero instead.
    warmup_shape: str = setting(
        "linear",
        "linear: ramp up to --lr over the warm-up; constant: --warmup-factor times --lr",
        choices=WARMUP_SHAPES,
    )
    warmup_factor: float = setting(
        0.1, "constant warm-up: the share of --lr used (He et al. 2015: 0.01 of 0.1)"
    )
    min_lr: float = setting(0.0, "floor of the cosine and poly schedules")

    # Loss.
    loss: str = setting(
        "ce",
        "ce | mse (one-hot +-1 targets, LeCun 1989) | dice | border (U-Net's weight map, eq. 2)",
        choices=LOSSES,
    )
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing (Szegedy et al. 2016)")
    aux_weight: float = setting(
        0.3, "weight of auxiliary-head losses (Szegedy et al. 2014, sec. 5)"
    )
    class_weights: str = setting(
        "none",
        "per-class loss weights (median_frequency: Badrinarayanan et al. 2015)",
        choices=CLASS_WEIGHTS,
    )

    # Data handling.
    augment: str = setting(
        "basic",
        "none | basic (shifts, flips where allowed) | pad-crop (classification: basic, and a "
        "streamed folder too pads 1/8 of each side and crops back, He et al. 2015) "
        "| affine (+ rotation, scale) | strong (+ erasing) "
        "| scale-crop (segmentation: scale 0.5-2, crop, flip; DeepLab)",
        choices=AUGMENTATIONS,
    )
    # Where a set has no validation split; a small share leaves more to train on when the
    # test split is fixed (mnist5k). He et al. fixed their CIFAR schedule on a 45k/5k split,
    # then trained the table's networks on all 50k (sec. 4.2): 0 holds nothing out.
    val_fraction: float = setting(
        0.1,
        "share of the training images held out to pick best.pt (0: none; the last epoch's "
        "weights are the result, and the data needs a test split)",
    )
    # Transfer is measured with few labels: a seeded share of the training split, stratified
    # by class for classification, while validation and test stay whole.
    train_fraction: float = setting(
        1.0, "train on this seeded, class-stratified share of the training split (0 < F <= 1)"
    )
    # Streamed folders read with one worker per core unless told otherwise; 0 reads in the
    # training process itself.
    workers: int | None = setting(
        None,
        "DataLoader worker processes for data not held in memory (unset: one per core "
        "for streamed folders, none otherwise)",
        resumable=True,
    )
    # A run stopped by a bad file may continue with the file left out: resumable.
    skip_bad_images: bool = setting(
        False,
        "leave out images that cannot be decoded and list them in skipped_images.txt "
        "(unset: stop with a message naming the file)",
        resumable=True,
    )
    data_mode: str = setting(
        "auto",
        "folder:PATH: decode into memory, stream from disk, or auto (memory within "
        "--memory-budget-mb)",
        choices=DATA_MODES,
    )
    memory_budget_mb: int = setting(
        512, "auto data mode: largest decoded folder held in memory, in MB"
    )
    # Unset: torchvision's reference evaluation, resize to 256 and centre-crop 224 (0.875),
    # or with --pretrained the weights' own crop and resize.
    crop_ratio: float | None = setting(
        None,
        "streamed evaluation: centre crop's share of the resize (unset: 0.875, or the "
        "pretrained weights' own)",
    )

    # Recipe (post-2017): what timm's train.py and torchvision's reference recipes add to the
    # papers' SGD. Every default leaves a run as it was before these options existed.
    random_resized_crop: bool = setting(
        False,
        "train on random crops of 8 to 100 percent of the area, resized (Szegedy et al. 2014); "
        "they replace --augment's shifts, rotation and zoom and keep its flips",
    )
    auto_augment: str = setting(
        "none",
        "per-image policy: autoaugment (Cubuk 2018) | randaugment (2019) | trivialaugment (2021)",
        choices=AUTO_AUGMENTS,
    )
    mixup: float = setting(0.0, "MixUp alpha, blends image pairs (Zhang et al. 2017); 0: off")
    cutmix: float = setting(0.0, "CutMix alpha, pastes patches (Yun et al. 2019); 0: off")
    random_erasing: float = setting(
        0.0, "probability of erasing a random rectangle (Zhong et al. 2017, torchvision's)"
    )
    model_ema: float | None = setting(
        None, "keep an exponential moving average of the weights with this decay per step"
    )
    norm_weight_decay: float | None = setting(
        None, "weight decay of norm layers and biases, e.g. 0 (unset: --weight-decay)"
    )
    accumulate: int = setting(
        1, "split each batch into N micro-batches and sum their gradients (less memory)"
    )
    compile: bool = setting(False, "torch.compile the training model (slow to start)")

    # Numerics and reproducibility.
    precision: str = setting(
        "fp32",
        "bf16: autocast to bfloat16; fp16: autocast to float16 with loss scaling (CUDA only)",
        choices=PRECISIONS,
    )
    # On CPU NHWC trains 1.0-3.3x faster (device.memory_format).
    channels_last: bool | None = setting(
        None, "NHWC memory layout (unset: on for CPU, off for GPU)"
    )
    seed: int = setting(0, "seeds weights, shuffling, augmentation and validation splits")
    device: str = setting("auto", "where to train", choices=DEVICES, resumable=True)
    threads: int | None = setting(
        None, "CPU threads for PyTorch (unset: one per core)", resumable=True
    )
    sync_bn: bool = setting(
        False, "under torchrun: batch-norm statistics over the global batch (segmentation)"
    )

    # Output.
    out: str | None = setting(None, "run directory (unset: runs/MODEL-DATA)", resumable=True)
    tensorboard: bool = setting(False, "also write TensorBoard event files", resumable=True)
    plots: bool = setting(
        True, "write curves.png and confusion.png at the end (about a second)", resumable=True
    )
    log_grad_norms: int | None = setting(
        None, "record per-layer gradient norms every N steps", resumable=True
    )
    quiet: bool = setting(False, "no progress bar or per-epoch lines", resumable=True)

    def validate(self) -> None:
        """Raise a :class:`CnnzooError` for values no run could use."""
        for setting_field in dataclasses.fields(self):
            allowed = setting_field.metadata["choices"]
            value = getattr(self, setting_field.name)
            if allowed is not None and value is not None and value not in allowed:
                names = ", ".join(map(str, allowed))
                raise CnnzooError(f"{setting_field.name} must be one of {names}; got {value!r}")
        positive = ("epochs", "batch_size", "eval_memory_mb", "accumulate")
        for name in positive:
            if getattr(self, name) < 1:
                raise CnnzooError(f"{name} must be at least 1, got {getattr(self, name)}")
        optional = ("iterations", "in_channels", "log_grad_norms", "threads", "eval_batch_size")
        for name in optional:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CnnzooError(f"{name} must be at least 1, got {value}")
        self._validate_image_size()
        if self.lr <= 0:
            raise CnnzooError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise CnnzooError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise CnnzooError(f"grad_clip must be positive, got {self.grad_clip}")
        if self.crop_ratio is not None and not 0.0 < self.crop_ratio <= 1.0:
            raise CnnzooError(f"crop_ratio must be in (0, 1], got {self.crop_ratio}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise CnnzooError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.memory_budget_mb < 0:
            raise CnnzooError(f"memory_budget_mb cannot be negative, got {self.memory_budget_mb}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise CnnzooError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if not 0.0 < self.warmup_factor <= 1.0:
            raise CnnzooError(f"warmup_factor must be in (0, 1], got {self.warmup_factor}")
        if (self.workers or 0) < 0 or self.warmup < 0:
            raise CnnzooError("workers and warmup cannot be negative")
        self._validate_recipe()
        self._validate_starting_weights()
        if sorted(self.milestones) != list(self.milestones):
            raise CnnzooError(f"milestones must be increasing, got {self.milestones}")

    def _validate_recipe(self) -> None:
        """The post-2017 options' ranges, and what they cannot be combined with."""
        if self.mixup < 0 or self.cutmix < 0:
            raise CnnzooError("mixup and cutmix are Beta-distribution alphas: 0 (off) or more")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise CnnzooError(f"random_erasing is a probability, got {self.random_erasing}")
        if self.model_ema is not None and not 0.0 < self.model_ema < 1.0:
            raise CnnzooError(f"model_ema is a decay in (0, 1), got {self.model_ema}")
        if self.norm_weight_decay is not None and self.norm_weight_decay < 0:
            raise CnnzooError(f"norm_weight_decay cannot be negative, got {self.norm_weight_decay}")
        if self.batch_size < self.accumulate:
            raise CnnzooError(
                f"--accumulate {self.accumulate} splits each batch of {self.batch_size} images; "
                "it cannot be more than --batch-size"
            )
        if (self.mixup or self.cutmix) and self.loss != "ce":
            raise CnnzooError("--mixup and --cutmix mix the targets too: they need --loss ce")

    def _validate_starting_weights(self) -> None:
        """--pretrained and --init-from, and the options that only make sense with one."""
        if self.pretrained is not None and self.init_from is not None:
            raise CnnzooError(
                "--pretrained and --init-from both choose the starting weights; give one"
            )
        if self.pretrained is not None and self.in_channels == 1:
            raise CnnzooError(
                "--pretrained weights take 3 channels and grey images are converted to RGB; "
                "drop --in-channels 1"
            )
        if self.head_lr_scale <= 0:
            raise CnnzooError(f"head_lr_scale must be positive, got {self.head_lr_scale}")
        fine_tuning = self.pretrained is not None or self.init_from is not None
        asked = [
            flag
            for flag, given in (
                ("--freeze-backbone", self.freeze_backbone),
                ("--head-lr-scale", self.head_lr_scale != 1.0),
            )
            if given
        ]
        if asked and not fine_tuning:
            raise CnnzooError(
                f"{' and '.join(asked)}: a fresh head exists only when the rest starts from "
                "trained weights; add --pretrained torchvision or --init-from RUN"
            )

    def _validate_image_size(self) -> None:
        size = self.image_size
        if isinstance(size, str) and size != PAPER_SIZE:
            raise CnnzooError(f"image_size must be H,W, one side or 'paper'; got {size!r}")
        if isinstance(size, list) and len(size) != 2:
            raise CnnzooError(f"image_size takes one side or two (H, W), got {size}")
        sides = image_size_pair(size) or ()
        if any(side < 1 for side in sides):
            raise CnnzooError(f"image sides must be at least 1, got {size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainConfig))
# Fields a resumed run may change: how long it runs and how it reports, not what it learns.
RESUMABLE_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resumable"])


def check_recipe_task(config: TrainConfig, task: str) -> None:
    """Refuse the recipe options that change class labels or whole images on segmentation."""
    if task == "classification":
        return
    asked = [
        name
        for name in ("random_resized_crop", "mixup", "cutmix", "random_erasing")
        if getattr(config, name)
    ] + (["auto_augment"] if config.auto_augment != "none" else [])
    if asked:
        flags = ", ".join("--" + name.replace("_", "-") for name in asked)
        raise CnnzooError(f"{flags}: for classification only; {task} data has label masks")


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
    checked = {
        key: _coerce(key, _parsed(key, value), hints_by_name[key]) for key, value in values.items()
    }
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


def _parsed(name: str, value: Any) -> Any:
    """A string through the field's own parser where it has one (``--image-size 180,240``)."""
    parse = TrainConfig.__dataclass_fields__[name].metadata["parse"]
    return parse(value) if parse is not None and isinstance(value, str) else value


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
