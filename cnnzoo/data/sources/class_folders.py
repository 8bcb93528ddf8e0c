"""``folder:PATH``: one sub-folder of images per class, either directly under
PATH or under PATH/train (with optional PATH/val and PATH/test).

A set within ``DataRequest.memory_budget_mb`` is decoded into memory, a larger
one streams from disk (:mod:`cnnzoo.data.streaming`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import Tensor

from cnnzoo.data.bad_images import BadImageLog, class_folder_images, scan_headers
from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.classification_splits import in_memory_splits, stratified_split
from cnnzoo.data.images import UnreadableImage, read_image, read_image_channels, read_image_size
from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.streaming import (
    FolderSamples,
    SampleRecipe,
    StreamedImages,
    choose_mode,
    default_workers,
    list_class_files,
    training_recipe,
)
from cnnzoo.data.transforms import (
    channel_statistics,
    training_policy,
)
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress

# The names a validation folder may have under folder:PATH.
VAL_FOLDERS = ("val", "valid", "validation")


@register_dataset("folder", task="classification")
def load_folder(request: DataRequest) -> DataSplits:
    """``folder:PATH``: one sub-folder of images per class (PATH or PATH/train, val, test).

    Listing the files and reading one header tells the decoded size at the
    training size; a set within ``request.memory_budget_mb`` is decoded into
    memory (the fast path), a larger one streams from disk
    (:mod:`cnnzoo.data.streaming`). ``request.data_mode`` forces either.
    """
    if not request.argument:
        raise CnnzooError("give the image folder as --data folder:PATH")
    root = Path(request.argument).expanduser()
    if not root.is_dir():
        raise CnnzooError(f"image folder {root} does not exist")
    train_dir = root / "train" if (root / "train").is_dir() else root
    class_names = _class_names(train_dir)
    val_dir, test_dir = split_folder(root, "val"), split_folder(root, "test")
    files = {
        name: list_class_files(folder, class_names)
        for name, folder in (("train", train_dir), ("val", val_dir), ("test", test_dir))
        if folder is not None
    }
    bad_images = BadImageLog(request.skip_bad_images)
    size = request.image_size or read_image_size(files["train"][0][0])
    # Unset channels are the data's own, read from its first image's header.
    channels = request.in_channels or read_image_channels(files["train"][0][0])
    count = sum(len(paths) for paths, _ in files.values())
    mode, reason = choose_mode(
        request.data_mode, count * channels * size[0] * size[1], request.memory_budget_mb
    )
    if mode == "memory":
        # Decoding is the scan here: a file that cannot be read goes to bad_images.
        decoded = {
            name: _decode(*split, channels, size, bad_images) for name, split in files.items()
        }
        # Said once every file has decoded, so that a broken file's message stands alone.
        _announce(f"folder: {count:,} images, {reason}: held in memory")
        splits = in_memory_splits(
            request, decoded["train"], decoded.get("test"), class_names,
            mirror_invariant=True, val=decoded.get("val"),
        )  # fmt: skip
    else:
        # Headers only, before training: what fails to decode later is met by the loader.
        files = {name: _readable(*split, bad_images) for name, split in files.items()}
        workers = request.workers if request.workers is not None else default_workers()
        _announce(f"folder: {count:,} images, {reason}: streaming from disk with {workers} workers")
        splits = _streamed_splits(request, files, class_names, size, workers)
    splits.skipped_images = bad_images.skipped
    splits.mode, splits.mode_reason = mode, reason
    return splits


def _class_names(train_dir: Path) -> list[str]:
    """The class folders, each named when it holds no image, before anything is decoded."""
    class_folders = [e for e in train_dir.iterdir() if e.is_dir() and not e.name.startswith(".")]
    for folder in class_folders:
        class_folder_images(folder)
    class_names = sorted(folder.name for folder in class_folders)
    if len(class_names) < 2:
        found = f"only {class_names[0]!r}" if class_names else "none"
        raise CnnzooError(
            f"{train_dir} needs one sub-folder of images per class and at least two classes; "
            f"found {found}"
        )
    return class_names


def _announce(line: str) -> None:
    """Say once, on the main process only, how a folder is read."""
    if os.environ.get("RANK", "0") == "0":
        print(line, file=sys.stderr)


def _decode(
    files: list[Path],
    targets: Tensor,
    channels: int,
    size: tuple[int, int],
    bad_images: BadImageLog,
) -> tuple[Tensor, Tensor]:
    """Every readable image decoded once into a uint8 (N, C, H, W) stack of one size."""
    images, kept = [], []
    folder = files[0].parent.parent
    for index, path in enumerate(progress(files, f"decoding {folder.name}", unit="img")):
        try:
            images.append(torch.from_numpy(read_image(path, channels, size)))
        except UnreadableImage as error:
            bad_images.report_error(error)
            continue
        kept.append(index)
    if not images:
        raise CnnzooError(
            f"no image in {folder} could be read (the first: {bad_images.skipped[0].path}); "
            "check the files"
        )
    return torch.stack(images).permute(0, 3, 1, 2).contiguous(), targets[kept]


def _readable(
    files: list[Path], targets: Tensor, bad_images: BadImageLog
) -> tuple[list[Path], Tensor]:
    """The files whose headers read, with their targets; the others go to ``bad_images``."""
    readable = set(scan_headers(files, bad_images))
    kept = [index for index, path in enumerate(files) if path in readable]
    return [files[index] for index in kept], targets[kept]


def _streamed_splits(
    request: DataRequest,
    files: dict[str, tuple[list[Path], Tensor]],
    class_names: list[str],
    size: tuple[int, int],
    workers: int,
) -> DataSplits:
    """Splits read from disk: the recipe's random crops and policies in training, centre crops.

    Without a val folder the same stratified share is held out as in memory,
    and the normalisation comes from a centre crop of up to 256 training images.
    """
    train_files, train_targets = files["train"]
    channels = request.in_channels or read_image_channels(train_files[0])
    evaluation = SampleRecipe(size, channels, crop_ratio=request.crop_ratio)
    sample = FolderSamples(train_files, train_targets, evaluation)
    picks = torch.linspace(0, len(sample) - 1, min(256, len(sample))).long().unique()
    mean, std = channel_statistics(torch.stack([sample[(int(i), 0)][0] for i in picks]))
    normalization = Normalization(tuple(mean), tuple(std))
    training = training_recipe(evaluation, training_policy(request, mirror_invariant=True), mean)
    train = FolderSamples(train_files, train_targets, training)
    val = None
    if "val" in files:
        val = FolderSamples(*files["val"], evaluation)
    elif request.val_fraction > 0:
        holdout = max(len(class_names), round(request.val_fraction * len(train)))
        kept, held = stratified_split(train.targets, holdout, request.seed)
        train, val = train.subset(kept), sample.subset(held)

    def split(samples: FolderSamples) -> StreamedImages:
        return StreamedImages(samples, normalization, workers)

    test = split(FolderSamples(*files["test"], evaluation)) if "test" in files else None
    held_out = split(val) if val is not None else None
    return DataSplits(
        task="classification", train=split(train), val=held_out, test=test,
        class_names=list(class_names),
    )  # fmt: skip


def split_folder(root: Path, split: str) -> Path | None:
    """The folder of ``split`` ("test" or "val") under ``folder:ROOT``, where it has its own.

    A test folder counts only beside a ``train/`` folder; a validation folder
    may be called ``val``, ``valid`` or ``validation``.
    """
    train = root / "train" if (root / "train").is_dir() else root
    if split == "test":
        return root / "test" if (root / "test").is_dir() and train != root else None
    return next((root / n for n in VAL_FOLDERS if (root / n).is_dir()), None)
