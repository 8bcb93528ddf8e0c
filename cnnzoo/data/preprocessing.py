"""How an image becomes a trained network's input, exactly as its evaluation prepared it.

A run evaluates classification images resized to its training size: the
whole image where the set was held in memory (:mod:`cnnzoo.data.in_memory`),
or, for a folder streamed from disk, the centre crop that is ``crop_ratio``
of the resized shorter side (:mod:`cnnzoo.data.streaming`, torchvision's
224 of 256); segmentation images keep their own size. Then the pixels are
normalised with the run's statistics. The trainer records this
:class:`Preprocessing` in every checkpoint, so ``cnnzoo predict``,
``cnnzoo.load`` and exported folders feed a file exactly as ``cnnzoo eval``
fed the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cnnzoo.data.images import crop_and_resize, decode_image, to_channels
from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.protocol import Split
from cnnzoo.data.streaming import center_box
from cnnzoo.errors import CnnzooError

# What preprocess and predict take: image files, Pillow images, or (C, H, W) tensors
# (uint8 on 0..255, or floats on 0..1, as torchvision's functional transforms take them).
ImageInput = str | Path | Image.Image | Tensor


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the network's input, exactly as evaluation prepared it."""

    channels: int  # 1 grey, 3 RGB: what the one image reader converts every file to
    size: tuple[int, int] | None  # (H, W) input; None: each image at its own size (segmentation)
    # None: the whole image resized to ``size`` (data held in memory); a ratio: resized so that
    # ``size`` is that share of it, then centre-cropped (streamed folders, torchvision's 224/256).
    crop_ratio: float | None
    normalization: Normalization | None  # per-channel mean and std on the 0..1 scale

    def __call__(self, images: ImageInput | Sequence[ImageInput]) -> Tensor:
        """A normalised float batch (N, C, H, W) of ``images`` (one image, or a sequence)."""
        listed = listed_images(images)
        pixels = [self.resized(_uint8_pixels(image, self.channels)) for image in listed]
        if len({tuple(p.shape) for p in pixels}) > 1:
            raise CnnzooError(
                "these images have different sizes and this network takes each at its own "
                "size; preprocess or predict them one at a time"
            )
        return self.normalized(torch.stack(pixels))

    def normalized(self, batch: Tensor) -> Tensor:
        """A uint8 batch mapped as evaluation maps it (one multiply-add from the bytes)."""
        if self.normalization is None:
            return batch.float().div(255)
        return self.normalization.apply_to_bytes(batch)

    def resized(self, pixels: Tensor) -> Tensor:
        """uint8 (C, H, W) pixels at the network's input size, cropped as evaluation crops."""
        if self.size is None:
            return pixels
        height, width = pixels.shape[-2:]
        box = (
            center_box(height, width, self.size, self.crop_ratio)
            if self.crop_ratio is not None
            else (0, 0, height, width)
        )
        return crop_and_resize(pixels, box, self.size)

    def to_dict(self) -> dict[str, Any]:
        stats = self.normalization
        return {
            "channels": self.channels,
            "size": list(self.size) if self.size else None,
            "crop_ratio": self.crop_ratio,
            "mean": list(stats.mean) if stats else None,
            "std": list(stats.std) if stats else None,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Preprocessing:
        mean, std = values["mean"], values["std"]
        return cls(
            channels=int(values["channels"]),
            size=tuple(values["size"]) if values["size"] else None,
            crop_ratio=values["crop_ratio"],
            normalization=Normalization(tuple(mean), tuple(std)) if mean else None,
        )


def listed_images(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """``images`` as a list: one file, picture or (C, H, W) tensor is a list of one."""
    single = isinstance(images, (str, Path, Image.Image))
    if single or (isinstance(images, Tensor) and images.dim() == 3):
        return [images]
    if len(images) == 0:
        raise CnnzooError("no images given; pass image files, Pillow images or tensors")
    return list(images)


def _uint8_pixels(image: ImageInput, channels: int) -> Tensor:
    """(C, H, W) uint8 pixels of one input, through the one image reader for files."""
    if isinstance(image, (str, Path)):
        return decode_image(Path(image), channels)
    if isinstance(image, Image.Image):
        array = np.array(to_channels(image, channels), dtype=np.uint8)
        return torch.from_numpy(array.reshape(array.shape[0], array.shape[1], -1)).permute(2, 0, 1)
    if isinstance(image, Tensor) and image.dim() == 3 and image.shape[0] == channels:
        if image.dtype == torch.uint8:
            return image
        # Evaluation prepares bytes; a float picture is quantised as saving it would.
        return image.float().clamp(0, 1).mul(255).round().to(torch.uint8)
    raise CnnzooError(
        f"cannot read {type(image).__name__} {getattr(image, 'shape', '')} as an image; give "
        f"file paths, Pillow images or ({channels}, H, W) tensors"
    )


def evaluation_preprocessing(
    task: str, channels: int, size: tuple[int, int], split: Split
) -> Preprocessing:
    """How ``split`` prepares an image for evaluation, as checkpoints record it."""
    classification = task == "classification"
    return Preprocessing(
        channels,
        size if classification else None,
        split.crop_ratio if classification else None,
        split.normalization,
    )
