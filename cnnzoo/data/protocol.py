"""The contract between a data set's splits and the engine that trains and evaluates on them.

A split (``DataSplits.train``, ``.val``, ``.test``) is a map-style data set of
``(image, target)`` pairs. :class:`Split` names the rest of what the engine
reads from it, so a new data source knows what to offer and the engine reads
attributes instead of asking whether they exist:

* ``normalization``: the statistics a checkpoint records so that ``predict``
  feeds images as training did (None where items are already [0, 1] images);
* ``batch``: an optional fast path serving a whole batch by index tensor
  (None: the engine reads items through a ``DataLoader``);
* ``subset``: a share of the split, for evaluation spread over processes;
* ``load_batches``: per-sample access for splits without ``batch``: the
  batches of given indices (one process's shard of each global batch under
  torchrun), read by ``DataLoader`` workers and ready for the network. A
  split read from files (:mod:`cnnzoo.data.streaming`) keeps its workers
  alive between epochs and normalises whole uint8 batches;
* ``targets`` (:class:`ClassificationSplit`): every class index at once;
* ``iter_masks`` (:class:`SegmentationSplit`): every label mask before
  augmentation, for SegNet's median-frequency class weights.

:class:`DataSplit` gives each optional member its default; every split class
in :mod:`cnnzoo.data` derives from it. :func:`as_split` wraps any other
map-style data set (a ``TensorDataset``, say) so it meets the contract too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import BadImageLog, readable_batches, readable_loader
from cnnzoo.data.seeding import SeededItems

if TYPE_CHECKING:
    from cnnzoo.data.in_memory import Normalization

# batch(indices, generator): normalised images and targets of ``indices``, augmented
# with draws from ``generator`` where the split augments.
BatchServer = Callable[[Tensor, torch.Generator | None], tuple[Tensor, Tensor]]


@runtime_checkable
class Split(Protocol):
    """What every split offers the engine."""

    normalization: Normalization | None  # how items map to the network's input; None: as served
    batch: BatchServer | None  # whole batches by index, without a DataLoader; None: no fast path
    # Evaluation's centre crop as a share of the resized shorter side (a streamed folder's
    # 224 of 256); None: each image is resized whole, or kept at its own size.
    crop_ratio: float | None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]: ...

    def subset(self, indices: Tensor) -> Split:
        """The samples at ``indices``, prepared as this split prepares them."""
        ...

    def load_batches(
        self, batches: Sequence[Sequence[int]], *, workers: int | None = None,
        generator: torch.Generator | None = None, epoch_key: int | None = None,
        bad_images: BadImageLog | None = None, minimum: int = 1,
    ) -> Iterator[tuple[Tensor, Tensor]]:  # fmt: skip
        """(images, targets) of each list of indices in ``batches``, in order.

        ``workers``: ``DataLoader`` worker processes (None: the split's own
        choice); ``generator``: the epoch's random stream, for augmentation;
        ``epoch_key``: seeds each item's augmentation with the item's index
        (:mod:`cnnzoo.data.seeding`), so that any reader draws the same;
        ``bad_images``: where a file that cannot be decoded goes (None: stop
        with a message naming it); ``minimum``: the fewest readable images a
        batch may keep (2 in training, see :func:`~cnnzoo.data.bad_images.readable_batches`).
        """
        ...


@runtime_checkable
class ClassificationSplit(Split, Protocol):
    """A classification split: its class indices are known without decoding an image."""

    targets: Tensor  # (N,) int64 class index of every sample


@runtime_checkable
class SegmentationSplit(Split, Protocol):
    """A segmentation split: its label masks can be read without augmentation."""

    def iter_masks(self) -> Iterator[Tensor]:
        """Every (H, W) int64 label mask once, in order, before any augmentation."""
        ...


class DataSplit(Dataset):
    """A split with the contract's defaults: no normalisation, no fast path, generic subsets.

    Subclasses define ``__len__`` and ``__getitem__`` and override what they
    do better: an in-memory set serves ``batch`` itself, a file-backed
    segmentation set reads its masks without decoding the images.
    """

    normalization: Normalization | None = None
    batch: BatchServer | None = None
    crop_ratio: float | None = None

    def subset(self, indices: Tensor) -> DataSplit:
        return DatasetView(self, indices.tolist())

    def load_batches(
        self, batches: Sequence[Sequence[int]], *, workers: int | None = None,
        generator: torch.Generator | None = None, epoch_key: int | None = None,
        bad_images: BadImageLog | None = None, minimum: int = 1,
    ) -> Iterator[tuple[Tensor, Tensor]]:  # fmt: skip
        """Items collated by a ``DataLoader`` (no workers unless asked for)."""
        items = self if epoch_key is None else SeededItems(self, epoch_key)
        loader = readable_loader(
            items,
            batch_sampler=[list(batch) for batch in batches],
            num_workers=workers or 0,
            # The workers' own seeds come from here rather than from the global generator,
            # whose draws (dropout) then do not depend on the number of workers.
            generator=generator,
            pin_memory=torch.cuda.is_available(),
        )
        yield from readable_batches(loader, bad_images or BadImageLog(), minimum=minimum)

    def iter_masks(self) -> Iterator[Tensor]:
        """The targets as the split serves them: right for any split, but decodes every image."""
        return (self[index][1] for index in range(len(self)))


class DatasetView(DataSplit):
    """The samples ``indices`` (all by default) of any map-style data set, as a split."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | None = None) -> None:
        self.dataset = dataset
        self.indices = list(range(len(dataset))) if indices is None else list(indices)
        if isinstance(dataset, Split):
            self.normalization = dataset.normalization
            self.crop_ratio = dataset.crop_ratio

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.dataset[self.indices[index]]


def as_split(dataset: Dataset) -> Split:
    """``dataset`` itself where it meets the contract, else a view of it that does."""
    return dataset if isinstance(dataset, Split) else DatasetView(dataset)
