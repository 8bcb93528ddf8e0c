"""A network paired with a data set: the same task, and an input size the network accepts.

Training and evaluating a checkpoint both need these checks, before any
data is decoded where possible, so that a classifier asked to segment fails
with one line naming the data sets that would fit.
"""

from __future__ import annotations

from cnnzoo.data import DataSplits, list_datasets, source_name
from cnnzoo.engine.config import TrainConfig
from cnnzoo.errors import CnnzooError
from cnnzoo.registry import ModelEntry, check_input_size


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


def resolve_input(config: TrainConfig, entry: ModelEntry) -> tuple[int, tuple[int, int]]:
    """The model's input channels and (H, W): the configuration's, else the paper's."""
    channels = config.in_channels or entry.input_size[0]
    side = config.image_size
    size = (side, side) if side else (entry.input_size[1], entry.input_size[2])
    check_input_size(entry.name, entry.min_size, (channels, *size))
    return channels, size


def _check_same_task(entry: ModelEntry, data_task: str, data_name: str) -> None:
    if data_task != entry.task:
        names = ", ".join(s.name for s in list_datasets(entry.task))
        raise CnnzooError(
            f"{entry.name} is a {entry.task} network but {data_name!r} is a {data_task} "
            f"data set; pick a {entry.task} data set: {names}"
        )
