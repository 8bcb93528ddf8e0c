"""``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn``: read by torchvision.

They are read from ``--data-dir`` (else :func:`default_data_dir`) and fetched
only with ``--download``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.classification_splits import in_memory_splits
from cnnzoo.data.sources.digits import DIGIT_NAMES
from cnnzoo.errors import CnnzooError


def default_data_dir() -> Path:
    """Where downloadable sets live without --data-dir: $CNNZOO_DATA or ~/.cache/cnnzoo/data."""
    return Path(os.environ.get("CNNZOO_DATA", Path.home() / ".cache" / "cnnzoo" / "data"))


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


def _gray_stack(data: object) -> Tensor:
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
        (_gray_stack(train.data), torch.as_tensor(train.targets)),
        (_gray_stack(test.data), torch.as_tensor(test.targets)),
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
