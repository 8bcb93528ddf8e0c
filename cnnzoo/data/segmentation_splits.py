"""What a segmentation split is: image/mask pairs held as arrays or read from files.

Every item is ``(image, mask)``: a float (C, H, W) image in [0, 1] and an
int64 (H, W) mask of class indices, where ``ignore_index`` (if the set has
one) marks void pixels that no loss or metric counts. ``DataRequest.image_size``
is the (H, W) of the random training crops (None: the data's own size, so that
an epoch costs what its pixels cost); validation and test images stay whole,
since the networks are fully convolutional.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cnnzoo.data.base import DataRequest
from cnnzoo.data.images import (
    read_image,
    read_image_channels,
    read_mask,
)
from cnnzoo.data.protocol import DataSplit
from cnnzoo.data.segmentation_transforms import SegmentationTransform

GRAY_OR_COLOR = (1, 3)  # images are read as grey (L) or colour (RGB)

MaskDecoder = Callable[[np.ndarray, Path], np.ndarray]


class InMemorySegmentation(DataSplit):
    """Image/mask pairs held as arrays: (H, W, C) uint8 images, (H, W) label masks.

    ``repeats`` lists every image that many times, so that an epoch of random
    crops covers about as many pixels as the images hold.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        transform: SegmentationTransform,
        repeats: int = 1,
    ) -> None:
        self.images, self.masks, self.transform = images, masks, transform
        self.repeats = repeats

    def __len__(self) -> int:
        return len(self.images) * self.repeats

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        index %= len(self.images)
        return self.transform(self.images[index], self.masks[index])

    def iter_masks(self) -> Iterator[Tensor]:
        """The untransformed masks, e.g. for median frequency class weights."""
        return (torch.from_numpy(np.asarray(m, dtype=np.int64)) for m in self.masks)


class FileSegmentation(DataSplit):
    """Image/mask file pairs, read when an item is asked for."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        in_channels: int,
        decode_mask: MaskDecoder,
        transform: SegmentationTransform,
    ) -> None:
        self.pairs, self.in_channels = list(pairs), in_channels
        self.decode_mask, self.transform = decode_mask, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path, self.in_channels)
        return self.transform(image, self.decode_mask(read_mask(mask_path), mask_path))

    def iter_masks(self) -> Iterator[Tensor]:
        for _, mask_path in self.pairs:
            mask = self.decode_mask(read_mask(mask_path), mask_path)
            yield torch.from_numpy(mask.astype(np.int64))


def transforms_for(
    request: DataRequest, ignore_index: int | None, size: tuple[int, int], uniform: bool = True
) -> tuple[SegmentationTransform, SegmentationTransform]:
    """Training transform (scale, crop, flips) and evaluation transform (whole image).

    ``size`` is the images' size, or the largest size where they differ
    (``uniform`` False). Training crops ``request.image_size``, else ``size``,
    so that every scaled sample batches; evaluation pads images of different
    sizes to ``size`` with the void label.
    """
    crop = request.image_size or size
    train = SegmentationTransform(request.augment, crop, ignore_index)
    return train, SegmentationTransform("none", None, ignore_index, None if uniform else size)


def set_channels(request: DataRequest, first_image: Path) -> int:
    """The requested channels, else the set's own: those of its first image."""
    return request.in_channels or read_image_channels(first_image)


def identity_mask(mask: np.ndarray, path: Path) -> np.ndarray:
    return mask
