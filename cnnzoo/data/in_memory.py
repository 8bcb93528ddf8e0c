"""A data set held in memory as one uint8 tensor, served a whole batch at a time.

The training loop asks :meth:`InMemoryImages.batch` for a batch by index: one
tensor slice, an optional batch-wise augmentation and a normalisation, with no
per-sample Python work. Small sets (digits, MNIST, CIFAR) are stored at the
size the network needs; when that would take too much memory (CIFAR at
224x224 is 7.5 GB) the images stay at their native size and each batch is
resized as it is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from cnnzoo.data.protocol import DataSplit
from cnnzoo.data.transforms import (
    AugmentPolicy,
    augment_batch,
    random_erasing,
    resize_images,
    resize_masks,
)

# Stacks up to this many bytes at the network's size are resized once, up front.
PRESIZE_LIMIT_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Normalization:
    """Per-channel statistics that map [0, 1] pixels to the network's input."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def apply(self, images: Tensor) -> Tensor:
        """(images - mean) / std for float images in [0, 1]."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)
        return (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

    def apply_to_bytes(self, images: Tensor) -> Tensor:
        """The same for images on the 0..255 scale, as one multiply-add per pixel."""
        scale = torch.tensor([1 / (255 * s) for s in self.std]).view(1, -1, 1, 1)
        shift = torch.tensor([-m / s for m, s in zip(self.mean, self.std)]).view(1, -1, 1, 1)
        return torch.addcmul(shift, images.float(), scale)


class InMemoryImages(DataSplit):
    """Images (N, C, H, W) uint8 with class targets (N,) or label masks (N, H, W)."""

    def __init__(
        self,
        images: Tensor,
        targets: Tensor,
        normalization: Normalization,
        *,
        size: tuple[int, int] | None = None,
        augment: AugmentPolicy = AugmentPolicy(),  # noqa: B008 (frozen, immutable)
        ignore_index: int | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor shaped (N, C, H, W)")
        if targets.shape[0] != images.shape[0]:
            raise ValueError("images and targets must have the same length")
        self.size = tuple(size) if size is not None else tuple(images.shape[-2:])
        stored_bytes = images.shape[0] * images.shape[1] * self.size[0] * self.size[1]
        if stored_bytes <= PRESIZE_LIMIT_BYTES:
            images = resize_images(images, self.size)
            if targets.dim() == 3:
                targets = resize_masks(targets, self.size)
        self.images = images
        self.targets = targets.long()
        self.normalization = normalization
        self.augment = augment
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        images, targets = self.batch(torch.tensor([index]))
        return images[0], targets[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def batch(
        self, indices: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Normalised float images and targets of ``indices``, augmented if the set says so."""
        images = self.images[indices]
        targets = self.targets[indices]
        if tuple(images.shape[-2:]) != self.size:
            images = resize_images(images, self.size)
            if targets.dim() == 3:
                targets = resize_masks(targets, self.size)
        masks = targets if targets.dim() == 3 else None
        images, masks = augment_batch(images, masks, self.augment, generator, self.ignore_index)
        if masks is not None:
            targets = masks
        images = self.normalization.apply_to_bytes(images)
        return random_erasing(images, self.augment.random_erasing, generator), targets

    def iter_masks(self) -> Iterator[Tensor]:
        """The stored label masks (N, H, W) one by one, at the stored size."""
        return iter(self.targets)

    def subset(self, indices: Tensor) -> InMemoryImages:
        """The samples at ``indices`` with the same preparation (shares no storage)."""
        clone = InMemoryImages.__new__(InMemoryImages)
        clone.__dict__.update(self.__dict__)
        clone.images = self.images[indices]
        clone.targets = self.targets[indices]
        return clone

    def with_augment(self, augment: AugmentPolicy) -> InMemoryImages:
        """The same samples (shared storage) with another augmentation policy."""
        clone = InMemoryImages.__new__(InMemoryImages)
        clone.__dict__.update(self.__dict__)
        clone.augment = replace(augment)
        return clone
