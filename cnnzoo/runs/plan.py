"""A network paired with a data set: the same task, and an input the network accepts.

Training and evaluating a checkpoint both need these checks, before any
data is decoded where possible, so that a classifier asked to segment fails
with one line naming the data sets that would fit.

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

from pathlib import Path

import torch

from cnnzoo.data import DataRequest, DataSplits, list_datasets, source_name
from cnnzoo.data.bad_images import first_readable_shape
from cnnzoo.runs.config import PAPER_SIZE, TrainConfig, image_size_pair
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import ModelEntry, check_input_size

# Segmentation only: a random crop of the scaled image, padded with the void label
# (data/segmentation_transforms.py), means nothing for a class label.
SEGMENTATION_AUGMENTATIONS = ("scale-crop",)


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
            "none, basic, affine or strong"
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
        crop_ratio=config.crop_ratio if config.crop_ratio is not None else DataRequest.crop_ratio,
        workers=config.workers,
    )
