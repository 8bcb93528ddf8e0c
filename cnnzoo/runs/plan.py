"""A run's plan: what a training run will do, decided in one place before it starts.

:func:`request` settles everything the configuration alone decides: the
recipe checked, the pretrained weights' preprocessing filled in where the
configuration sets none, a resumed run's recipe compared with the saved one,
the network and data paired by task, and the :class:`DataRequest` the data
is opened with. :func:`resolve` then takes the opened data's own facts (its
channels and size, how many training images it has, whether it streams) and
returns the :class:`RunPlan` the trainer carries out: input, data mode,
batches per epoch, total steps, starting weights, normalization and run
directory. ``cnnzoo train --dry-run`` prints that plan without training.

The input follows the data unless the configuration says otherwise: RGB data
trains in colour and grey data in grey whatever channel count the paper's
network took, and a segmentation network trains on crops of the data's own
image size (CamVid's 240x180 stays 240x180 rather than becoming U-Net's
572x572, 7.6 times the pixels). A fully convolutional network pads to its
stride internally, so any size it accepts at all works. A classifier keeps
the paper's input size by default, since its head was designed for it.
``--image-size paper`` and ``--in-channels`` ask for the paper's input.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cnnzoo.data import DataRequest, DataSplits, list_datasets, load_data, source_name
from cnnzoo.data.bad_images import first_readable_shape
from cnnzoo.data.base import REFERENCE_CROP_RATIO
from cnnzoo.data.batches import batches_per_epoch
from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.subsets import training_fraction
from cnnzoo.device.placement import seed_everything
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import ModelEntry, check_input_size, get_model_entry
from cnnzoo.models.weights import SHIPPED_SOURCES, pretrained_options, pretrained_preprocessing
from cnnzoo.runs.config import PAPER_SIZE, TrainConfig, check_recipe_task, image_size_pair
from cnnzoo.tasks import get_task

if TYPE_CHECKING:
    from cnnzoo.runs.checkpoint import Checkpoint


@dataclass(frozen=True)
class RunRequest:
    """What a run's configuration decides before any data is read."""

    config: TrainConfig  # the recipe the run trains, pretrained defaults filled in
    model_name: str  # the registered network, or the class of a module handed over
    entry: ModelEntry | None  # None: a module the caller built, which no entry describes
    normalization: Normalization | None  # the pretrained weights' statistics; None: the data's
    run_dir: Path  # where the run writes
    world_size: int = 1  # processes training together (torchrun)
    resumed: Checkpoint | None = None  # last.pt of the run this one continues

    def resuming(self, state: Checkpoint) -> RunRequest:
        """This request continuing ``state``, once its recipe is known to be the saved one."""
        from cnnzoo.runs.directory import resumed_config  # here: checkpoint.py imports this module

        resumed_config(state, self.config, self.run_dir)
        return dataclasses.replace(self, resumed=state)

    def request_data(self) -> DataRequest:
        """What the data is opened with, once the network and the data are known to pair.

        Checked after a resumed run's recipe, so that resuming a run with
        another network names the checkpoint's network first.
        """
        config = self.config
        if self.entry is None:
            size = image_size_pair(config.image_size)
            return data_request(config, size, config.in_channels)
        check_data_task(self.entry, config.data)
        channels, size = requested_input(config, self.entry)
        return data_request(config, size, channels)


@dataclass(frozen=True)
class RunPlan:
    """Everything a training run will do; the trainer carries it out and decides nothing."""

    config: TrainConfig  # the final recipe, as config.yaml and the checkpoints record it
    model_name: str
    task: str  # "classification" or "segmentation"
    registered: bool  # built by name from the registry (else a module handed over)
    in_channels: int
    image_size: tuple[int, int]  # (H, W) the network is given
    data: DataRequest
    data_mode: str  # "memory" or "stream"
    data_mode_reason: str
    training_images: int  # after --train-fraction
    batches_per_epoch: int  # global batches
    total_steps: int  # optimizer steps of the whole run
    epochs: int  # passes the steps take, the last one possibly partial
    starting_weights: str  # where the weights start, in words
    normalization: Normalization | None  # the pretrained weights'; None: the data's own
    run_dir: Path
    resumed: bool = False

    def describe(self) -> str:
        """The plan as ``cnnzoo train --dry-run`` prints it, one fact a line."""
        config = self.config
        kind = {1: " (grey)", 3: " (colour)"}.get(self.in_channels, "")
        channels = f"{self.in_channels} channel{'s' if self.in_channels != 1 else ''}{kind}"
        length = (
            f"{config.iterations:,} iterations" if config.iterations else f"{config.epochs} epochs"
        )
        warmup = f", warm-up {config.warmup} {config.step_unit}(s)" if config.warmup else ""
        recipe = (
            f"{config.optimizer} lr {config.lr:g} momentum {config.momentum:g} weight decay "
            f"{config.weight_decay:g}, schedule {config.schedule}{warmup}, {length} of batches "
            f"of {config.batch_size}, augmentation {config.augment}{_recipe_extras(config)}, "
            f"precision {config.precision}"
        )
        normalization = (
            "the data's own statistics"
            if self.normalization is None
            else f"the weights' mean {self.normalization.mean} std {self.normalization.std}"
        )
        lines = {
            "model": f"{self.model_name} ({self.task})",
            "input": f"{channels}, {self.image_size[0]}x{self.image_size[1]} (H x W)",
            "data": f"{config.data}, {self.data_mode_description()}",
            "training images": f"{self.training_images:,}",
            "batches per epoch": f"{self.batches_per_epoch:,}",
            "total steps": f"{self.total_steps:,} over {self.epochs} epoch(s)",
            "recipe": recipe,
            "starting weights": self.starting_weights,
            "normalization": normalization,
            "run directory": str(self.run_dir),
        }
        return "\n".join(f"{name}: {value}" for name, value in lines.items())

    def data_mode_description(self) -> str:
        """How the training images are read, and why."""
        if self.data_mode == "stream":
            return f"streamed from disk ({self.data_mode_reason})"
        return f"held in memory ({self.data_mode_reason})"


def _recipe_extras(config: TrainConfig) -> str:
    """The post-2017 options a recipe switches on, as ", + NAME VALUE" each."""
    given = [
        ("random-resized-crop", "" if config.random_resized_crop else None),
        (config.auto_augment, "" if config.auto_augment != "none" else None),
        ("random-erasing", config.random_erasing or None),
        ("mixup", config.mixup or None),
        ("cutmix", config.cutmix or None),
        ("label-smoothing", config.label_smoothing or None),
        ("model-ema", config.model_ema),
    ]
    return "".join(
        f" + {name}{f' {value:g}' if value != '' else ''}"
        for name, value in given
        if value is not None
    )


def request(
    config: TrainConfig, *, module: str | None = None, resume: bool = False, world_size: int = 1
) -> RunRequest:
    """What ``config`` decides before the data is read; ``module`` names a network handed over.

    Refuses a configuration no run could use, a resume or pretrained weights
    for a network no registry entry describes, and a global batch too small
    for ``world_size`` processes.
    """
    from cnnzoo.runs.directory import run_dir_of  # here: checkpoint.py imports this module

    config.validate()
    entry = None
    if module is None:
        entry = get_model_entry(config.model)
    elif config.pretrained is not None:
        raise CnnzooError("--pretrained needs a registered network; build it by name")
    if module is not None and resume:
        raise CnnzooError("only a registered network can resume; build it by name")
    normalization = None
    if config.pretrained is not None and entry is not None:
        config, normalization = pretrained_defaults(config, entry)
    if config.batch_size < 2 * world_size:
        raise CnnzooError(
            f"--batch-size is the global batch; {config.batch_size} cannot give each of "
            f"{world_size} processes two images; raise it"
        )
    return RunRequest(
        config=config,
        model_name=module or config.model,
        entry=entry,
        normalization=normalization,
        run_dir=run_dir_of(config),
        world_size=world_size,
    )


def open_data(run: RunRequest, data: DataSplits | None = None) -> DataSplits:
    """Seed the run, then read the data ``run`` asks for (``data``: handed over, as it is).

    The network and the data are checked to pair before any image is decoded.
    """
    asked = run.request_data()
    seed_everything(run.config.seed)
    if data is not None:
        return data
    return load_data(run.config.data, asked)


def resolve(run: RunRequest, data: DataSplits) -> tuple[RunPlan, DataSplits]:
    """The plan of ``run`` on its opened ``data``, and the data as the run trains on it.

    The network's input is the first readable training image's channels and
    size; the data the run trains on meets the split contract, takes the
    pretrained weights' normalization where there are any, and keeps the
    seeded ``--train-fraction`` share of its training split.
    """
    config = run.config
    if run.entry is not None:
        task = check_task(run.entry, data, config.data)
        channels, size = resolve_input(run.entry, data)
    else:
        task = get_task(data.task).name
        channels, size = data_input(data)
    check_recipe_task(config, task)
    if data.val is None and data.test is None:
        raise CnnzooError(
            f"--val-fraction 0 leaves {config.data!r} nothing to evaluate on: it has no test "
            "split; hold a share out (e.g. --val-fraction 0.1)"
        )
    data = data.with_contract()
    if run.normalization is not None:  # the weights', which checkpoints record
        for split in (data.train, data.val, data.test):
            if split is not None:
                split.normalization = run.normalization
    share = training_fraction(
        data.train, config.train_fraction, config.seed, stratified=data.task == "classification"
    )
    data = dataclasses.replace(data, train=share)
    steps = steps_per_epoch(len(share), config.batch_size, run.world_size)
    total_steps = config.iterations or config.epochs * steps
    plan = RunPlan(
        config=config,
        model_name=run.model_name,
        task=task,
        registered=run.entry is not None,
        in_channels=channels,
        image_size=size,
        data=run.request_data(),
        data_mode=data.mode,
        data_mode_reason=data.mode_reason,
        training_images=len(share),
        batches_per_epoch=steps,
        total_steps=total_steps,
        epochs=math.ceil(total_steps / steps),
        starting_weights=starting_weights(run),
        normalization=run.normalization,
        run_dir=run.run_dir,
        resumed=run.resumed is not None,
    )
    return plan, data


def starting_weights(run: RunRequest) -> str:
    """Where the run's weights start, in words."""
    config = run.config
    if run.resumed is not None:
        return f"resumed from {run.run_dir / 'last.pt'} (weights, optimizer and generators)"
    if config.pretrained == "imagenet":
        return "torchvision's ImageNet weights of the backbone (--pretrained imagenet)"
    if config.pretrained in SHIPPED_SOURCES:
        return f"cnnzoo's shipped {config.pretrained} weights (--pretrained {config.pretrained})"
    if config.pretrained is not None:
        return f"torchvision's weights (--pretrained {config.pretrained})"
    if config.init_from is not None:
        return f"the weights of {config.init_from} that fit (--init-from)"
    return f"a fresh initialization (seed {config.seed})"


def steps_per_epoch(samples: int, batch_size: int, world_size: int = 1) -> int:
    """Global batches per epoch, as :func:`batches_per_epoch` counts them for one process.

    With several processes, a last batch too small to give each two images
    (batch normalization needs two) is left out.
    """
    steps = batches_per_epoch(samples, batch_size)
    if world_size > 1 and steps * batch_size > samples:
        remainder = samples - (steps - 1) * batch_size
        if remainder < 2 * world_size:
            steps -= 1
    if steps == 0:
        raise CnnzooError(
            f"{samples} training images cannot give each of {world_size} processes "
            "two; use fewer processes or more data"
        )
    return steps


def pretrained_defaults(
    config: TrainConfig, entry: ModelEntry
) -> tuple[TrainConfig, Normalization]:
    """``config`` with the pretrained weights' preprocessing where it sets none, and its statistics.

    Three channels (grey images are converted to RGB, as torchvision's and
    timm's loaders do); for a classifier the input is the weights' crop and
    the streamed evaluation's crop ratio their crop over their resize (224 of
    256). A segmentation network keeps the data's own size, as its weights
    (crop None) do. The mean and std replace the data's own statistics. The
    builder options the weights switch on are the network's from the start:
    what reloads the run (eval, predict, cnnzoo.load) builds it the same way.
    """
    preprocessing = pretrained_preprocessing(
        entry.name, config.pretrained or "torchvision", **config.model_options
    )
    crop, resize = preprocessing["crop_size"], preprocessing["resize_size"]
    source = config.pretrained or "torchvision"
    switched = pretrained_options(entry.name, source, **config.model_options)
    options = {**config.model_options, **switched}
    changes: dict = {"in_channels": 3, "model_options": options}
    if crop is not None and entry.task == "classification":
        if config.image_size is None:
            changes["image_size"] = [crop, crop]
        if config.crop_ratio is None and resize:
            changes["crop_ratio"] = crop / resize
    normalization = Normalization(tuple(preprocessing["mean"]), tuple(preprocessing["std"]))
    return dataclasses.replace(config, **changes), normalization


# Segmentation only: a random crop of the scaled image, padded with the void label
# (data/segmentation_transforms.py), means nothing for a class label.
SEGMENTATION_AUGMENTATIONS = ("scale-crop",)
# Classification only: He et al.'s pad-and-crop of a class image (data/streaming.py); a
# segmentation mask would need the void label in its padding, which scale-crop already gives.
CLASSIFICATION_AUGMENTATIONS = ("pad-crop",)


def check_task(entry: ModelEntry, data: DataSplits, data_name: str) -> str:
    """The task, once the model and the loaded data are known to share it."""
    _check_same_task(entry, data.task, data_name)
    return entry.task


def check_data_task(entry: ModelEntry, data_spec: str) -> None:
    """Fail fast, before loading anything, when a registered source has the other task."""
    name = source_name(data_spec)
    source = next((s for s in list_datasets() if s.name == name), None)
    if source is not None:
        _check_same_task(entry, source.task, data_spec)


def requested_input(
    config: TrainConfig, entry: ModelEntry
) -> tuple[int | None, tuple[int, int] | None]:
    """The channels and (H, W) to ask the data for; None: the data's own.

    The size is checked against the network's minimum here, before any image
    is decoded; a size the data chooses is checked by :func:`resolve_input`.
    """
    if config.augment in SEGMENTATION_AUGMENTATIONS and entry.task != "segmentation":
        raise CnnzooError(
            f"--augment {config.augment} is for segmentation; for {entry.task} choose "
            "none, basic, pad-crop, affine or strong"
        )
    if config.augment in CLASSIFICATION_AUGMENTATIONS and entry.task != "classification":
        raise CnnzooError(
            f"--augment {config.augment} is for classification; for {entry.task} choose "
            "none, basic, affine, strong or scale-crop"
        )
    size = image_size_pair(config.image_size)
    asks_for_paper = config.image_size == PAPER_SIZE
    if asks_for_paper or (size is None and entry.task != "segmentation"):
        size = (entry.input_size[1], entry.input_size[2])
    if size is not None:
        check_input_size(entry.name, entry.min_size, (entry.input_size[0], *size))
    return config.in_channels, size


def resolve_input(entry: ModelEntry, data: DataSplits) -> tuple[int, tuple[int, int]]:
    """The channels and (H, W) the network trains on, checked against its minimum size."""
    channels, size = data_input(data)
    check_input_size(entry.name, entry.min_size, (channels, *size))
    return channels, size


def data_input(data: DataSplits) -> tuple[int, tuple[int, int]]:
    """Channels and (H, W) of the first readable training sample: what the network is given.

    ``fork_rng`` keeps the sample's augmentation from moving the generators
    the run is seeded with. A file that cannot be decoded is passed over here;
    training meets it again and stops on it or skips it (``--skip-bad-images``).
    """
    with torch.random.fork_rng(devices=[]):
        shape = first_readable_shape(data.train)
    if shape is None:
        raise CnnzooError("no training image could be read; check the files")
    return shape[0], (shape[-2], shape[-1])


def _check_same_task(entry: ModelEntry, data_task: str, data_name: str) -> None:
    if data_task != entry.task:
        names = ", ".join(s.name for s in list_datasets(entry.task))
        raise CnnzooError(
            f"{entry.name} is a {entry.task} network but {data_name!r} is a {data_task} "
            f"data set; pick a {entry.task} data set: {names}"
        )


def data_request(
    config: TrainConfig, image_size: tuple[int, int] | None, in_channels: int | None
) -> DataRequest:
    """What ``config`` asks of its data at ``image_size`` and ``in_channels``.

    The one mapping of a run's data fields onto a request: training reads its
    data through it, and evaluation reads the same splits through it again
    (the same validation share, folder mode and crop ratio), augmentation off.
    """
    return DataRequest(
        data_dir=Path(config.data_dir) if config.data_dir else None,
        download=config.download,
        image_size=image_size,
        in_channels=in_channels,
        augment=config.augment,
        random_resized_crop=config.random_resized_crop,
        auto_augment=config.auto_augment,
        random_erasing=config.random_erasing,
        seed=config.seed,
        val_fraction=config.val_fraction,
        skip_bad_images=config.skip_bad_images,
        data_mode=config.data_mode,
        memory_budget_mb=config.memory_budget_mb,
        crop_ratio=config.crop_ratio if config.crop_ratio is not None else REFERENCE_CROP_RATIO,
        workers=config.workers,
    )
