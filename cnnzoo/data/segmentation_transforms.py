"""Joint image/mask transforms for segmentation, built on torchvision.transforms.v2.

A geometric augmentation must move the label mask exactly as it moves the
image: v2 transforms do so when the image is a ``tv_tensors.Image`` and the
labels a ``tv_tensors.Mask`` (masks are resized with nearest-neighbour
interpolation so no new labels appear, and colour changes leave them alone).

Training: random scale (``augment``; ``scale-crop`` is DeepLab's street-scene
recipe), a random crop of ``crop_size`` (padded
where the scaled image is smaller: with the ignore index where the data set
has one, by mirroring otherwise, so every padded pixel keeps a true label),
random flips and, for ``strong``, colour jitter. Evaluation keeps the image
whole (fully convolutional networks take any size), optionally padded to a
common size with the ignore index so that images of different sizes batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

# The street-scene recipe of DeepLab (Chen et al. 2017, v3 §4.1, arXiv:1706.05587) on
# Cityscapes and VOC, and of SegNet's successors on CamVid: scale by 0.5-2.0, crop to the
# training size, padding with the void label, flip left-right. Never upside down: a road
# is below the sky.
STREET_SCALES = (0.5, 2.0)
# (low, high) scale factors drawn per sample. "scale-crop" is that recipe by name (and
# refused for classification, where "affine" means rotations); "affine" is "strong"
# without its colour jitter and vertical flips: geometry only.
SCALE_RANGES = {
    "none": None,
    "basic": (0.75, 1.5),
    "affine": STREET_SCALES,
    "strong": STREET_SCALES,
    "scale-crop": STREET_SCALES,
}


class RandomScale(v2.Transform):
    """Resize image and mask by one random factor from ``scale_range`` (nearest for masks)."""

    def __init__(self, scale_range: tuple[float, float]) -> None:
        super().__init__()
        self.scale_range = scale_range

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        low, high = self.scale_range
        return {"scale": float(torch.empty(1).uniform_(low, high))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        height, width = TF.get_size(inpt)
        size = [max(1, round(height * params["scale"])), max(1, round(width * params["scale"]))]
        return self._call_kernel(TF.resize, inpt, size=size, antialias=True)


@dataclass(frozen=True)
class SegmentationTransform:
    """Turns a (H, W, C) uint8 image and an (H, W) label array into training tensors.

    Returns a float (C, H, W) image in [0, 1] and an int64 (H, W) mask.
    """

    augment: str = "none"  # a key of SCALE_RANGES: none, basic, affine, strong, scale-crop
    crop_size: tuple[int, int] | None = None  # random crop (H, W); None keeps the whole image
    ignore_index: int | None = None  # fills padding of the mask; None: pad by mirroring
    pad_to: tuple[int, int] | None = None  # evaluation: pad bottom/right to this (H, W)

    def __post_init__(self) -> None:
        if self.augment not in SCALE_RANGES:
            raise ValueError(f"augment must be one of {', '.join(SCALE_RANGES)}")

    @cached_property
    def pipeline(self) -> v2.Compose:
        steps: list[v2.Transform] = []
        scale_range = SCALE_RANGES[self.augment]
        if scale_range is not None:
            steps.append(RandomScale(scale_range))
        if self.crop_size is not None:
            if self.ignore_index is None:
                steps.append(
                    v2.RandomCrop(self.crop_size, pad_if_needed=True, padding_mode="reflect")
                )
            else:
                fill = {tv_tensors.Image: 0, tv_tensors.Mask: self.ignore_index}
                steps.append(v2.RandomCrop(self.crop_size, pad_if_needed=True, fill=fill))
        if self.augment != "none":
            steps.append(v2.RandomHorizontalFlip())
        if self.augment == "strong":
            steps += [v2.RandomVerticalFlip(), v2.ColorJitter(brightness=0.3, contrast=0.3)]
        steps.append(v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True))
        return v2.Compose(steps)

    def __call__(self, image: np.ndarray | Image.Image, mask: np.ndarray) -> tuple[Tensor, Tensor]:
        pixels = np.asarray(image)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        image_tensor = tv_tensors.Image(
            torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)
        )
        mask_tensor = tv_tensors.Mask(torch.from_numpy(np.asarray(mask, dtype=np.int64)))
        image_out, mask_out = self.pipeline(image_tensor, mask_tensor)
        if self.pad_to is not None:
            image_out, mask_out = self._pad(image_out, mask_out)
        return image_out.as_subclass(Tensor), mask_out.as_subclass(Tensor)

    def _pad(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        height, width = self.pad_to  # type: ignore[misc]
        bottom, right = height - image.shape[-2], width - image.shape[-1]
        if bottom < 0 or right < 0:
            raise ValueError(f"image of {tuple(image.shape[-2:])} is larger than {self.pad_to}")
        fill = self.ignore_index if self.ignore_index is not None else 0
        padding = [0, 0, right, bottom]
        return TF.pad(image, padding, fill=0), TF.pad(mask, padding, fill=fill)
