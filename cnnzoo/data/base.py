"""What every data source returns, and the table of sources by name.

A source is a function decorated with :func:`register_dataset`; the command
line's ``--data NAME`` (or ``--data NAME:ARGUMENT``, as in ``folder:PATH``)
picks one. Each returns :class:`DataSplits`: train, validation and test sets
of ``(image, target)`` pairs, where the target is a class index for
classification and an (H, W) label mask for segmentation, each split meeting
the contract in :mod:`cnnzoo.data.protocol`. The loader's docstring describes
the source; image files are read with :mod:`cnnzoo.data.images`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cnnzoo.data.bad_images import BadImage
from cnnzoo.data.protocol import Split, as_split
from cnnzoo.errors import CnnzooError

# Streamed evaluation's centre crop when a run sets none: torchvision's reference
# evaluation resizes to 256 and crops 224.
REFERENCE_CROP_RATIO = 0.875


@dataclass(frozen=True, kw_only=True)
class DataRequest:
    """How the caller wants the data prepared; every field is the caller's to give.

    A training run's request is built by its plan (:mod:`cnnzoo.runs.plan`)
    from the run's configuration; :func:`plain_request` is the request of a
    caller that reads a data set outside a run.
    """

    data_dir: Path | None  # where downloadable sets live (--data-dir)
    download: bool  # fetch the set if it is missing (--download); never implicit
    image_size: tuple[int, int] | None  # (H, W) the network needs; None: native size
    in_channels: int | None  # grey (1) or colour (3), converted; None: the data's own
    augment: str  # "none", "basic", "pad-crop", "affine", "strong" or "scale-crop"
    random_resized_crop: bool  # the training split's RandomResizedCrop (--random-resized-crop)
    auto_augment: str  # the training split's per-image policy (--auto-augment)
    random_erasing: float  # the training split's RandomErasing probability
    seed: int  # fixes validation splits and synthetic data
    val_fraction: float  # share of the training split held out where a set has no val split
    skip_bad_images: bool  # leave out files that cannot be decoded (else: stop)
    data_mode: str  # image folders: "memory", "stream" from disk, or "auto" by budget
    memory_budget_mb: int  # auto: decode into memory up to this many MB, else stream
    crop_ratio: float  # streamed evaluation: centre crop of this share (224 of 256)
    workers: int | None  # streamed folders' worker processes; None: one per core
    argument: str | None = None  # the text after ':' in --data NAME:ARGUMENT (load_data sets it)


def plain_request(**changes: Any) -> DataRequest:
    """The request of a caller that reads a data set as it is, outside a training run.

    Colour images at their own size, no augmentation, seed 0, a tenth held out
    where a set has no validation split, folders decoded into memory up to
    512 MB, torchvision's evaluation crop; ``changes`` set other fields.
    """
    values: dict[str, Any] = {
        "data_dir": None, "download": False, "image_size": None, "in_channels": 3,
        "augment": "none", "random_resized_crop": False, "auto_augment": "none",
        "random_erasing": 0.0, "seed": 0, "val_fraction": 0.1, "skip_bad_images": False,
        "data_mode": "auto", "memory_budget_mb": 512, "crop_ratio": REFERENCE_CROP_RATIO,
        "workers": None,
    }  # fmt: skip
    return DataRequest(**{**values, **changes})


@dataclass
class DataSplits:
    """A data set ready for training: splits, class names and task."""

    task: str  # "classification" or "segmentation"
    train: Split  # each split meets the contract of cnnzoo.data.protocol
    val: Split | None  # picks the best checkpoint (None: --val-fraction 0, the last one)
    test: Split | None  # held-out split reported at the end (None: use val)
    class_names: list[str]
    ignore_index: int | None = None  # segmentation label that marks void pixels
    skipped_images: list[BadImage] = field(default_factory=list)  # left out while loading
    mode: str = "memory"  # how the training images are read: "memory" or "stream" from disk
    mode_reason: str = "decoded whole by its source"  # why, as the run's plan reports it

    def with_contract(self) -> DataSplits:
        """These splits, each meeting :class:`~cnnzoo.data.protocol.Split`.

        Splits built by hand (a ``TensorDataset`` in an experiment) are wrapped
        in a view; the splits of :func:`load_data` already meet it.
        """
        val, test = (as_split(s) if s is not None else None for s in (self.val, self.test))
        return replace(self, train=as_split(self.train), val=val, test=test)


DataSource = Callable[[DataRequest], DataSplits]


@dataclass(frozen=True)
class DataSourceEntry:
    name: str
    task: str
    description: str
    load: DataSource
    channels: tuple[int, ...] | None = None  # the channel counts it can give; None: any


_SOURCES: dict[str, DataSourceEntry] = {}


def register_dataset(
    name: str,
    *,
    task: str,
    description: str | None = None,
    channels: tuple[int, ...] | None = None,
) -> Callable[[DataSource], DataSource]:
    """Register a data source under ``name`` (duplicates are an error).

    ``description`` defaults to the first line of the loader's docstring, so
    a source is described once, where it is written. ``channels`` lists the
    channel counts the source can give (segmentation images are read as grey
    or colour, nothing else); :func:`load_data` refuses others before the
    source reads a file. None: any, converted.
    """

    def decorate(load: DataSource) -> DataSource:
        if name in _SOURCES:
            raise ValueError(f"a data set named {name!r} is already registered")
        summary = description or (inspect.getdoc(load) or "").partition("\n")[0]
        if not summary:
            raise ValueError(f"describe the data source {name!r} in its loader's docstring")
        _SOURCES[name] = DataSourceEntry(name, task, summary, load, channels)
        return load

    return decorate


def list_datasets(task: str | None = None) -> list[DataSourceEntry]:
    """Registered data sources, optionally of one task."""
    return [e for e in _SOURCES.values() if task is None or e.task == task]


def source_name(spec: str) -> str:
    """The registered source a ``--data`` spec names.

    ``folder:IMAGES,MASKS`` (two folders) is the segmentation folder pair,
    ``seg-folder``; ``folder:PATH`` (one) is the classification class folders.
    """
    name, _, argument = spec.partition(":")
    if name == "folder" and "," in argument:
        return "seg-folder"
    return name


def load_data(spec: str, request: DataRequest | None = None) -> DataSplits:
    """Load the data set named by ``spec`` (``NAME`` or ``NAME:ARGUMENT``).

    Every split returned meets :class:`~cnnzoo.data.protocol.Split`.
    """
    name, argument = source_name(spec), spec.partition(":")[2]
    if name not in _SOURCES:
        close = difflib.get_close_matches(name, list(_SOURCES), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        known = ", ".join(sorted(_SOURCES))
        raise CnnzooError(f"unknown data set {name!r}.{hint} Known data sets: {known}")
    request = request or plain_request()
    if argument:
        request = replace(request, argument=argument)
    entry = _SOURCES[name]
    if entry.channels is not None and request.in_channels not in (None, *entry.channels):
        allowed = " or ".join(str(count) for count in entry.channels)
        raise CnnzooError(
            f"{name} images have {allowed} channels, not {request.in_channels}; "
            f"choose --in-channels {allowed}"
        )
    splits = entry.load(request)
    # A source written against plain torch data sets still meets the contract.
    return splits.with_contract()
