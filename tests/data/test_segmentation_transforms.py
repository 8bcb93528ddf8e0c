"""Joint augmentation of an image and its mask, and padding with the void label."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnzoo.data.segmentation_transforms import SegmentationTransform


def _blocks(
    rng: np.random.Generator, shape: tuple[int, int], values: int, block: int = 8
) -> np.ndarray:
    """A label map of square blocks of random values below ``values``."""
    coarse = rng.integers(0, values, (shape[0] // block + 1, shape[1] // block + 1))
    return np.kron(coarse, np.ones((block, block), int))[: shape[0], : shape[1]]


@pytest.mark.parametrize("augment", ["none", "basic", "strong"])
def test_augmentation_moves_image_and_mask_together(augment: str) -> None:
    """The image is the mask in grey levels; after scaling, cropping and flipping it still is."""
    torch.manual_seed(1)
    mask = _blocks(np.random.default_rng(0), (96, 80), 4, block=16)
    image = np.repeat((mask * 80)[:, :, None], 3, axis=2).astype(np.uint8)
    transform = SegmentationTransform(augment, crop_size=(48, 40))
    for _ in range(5):
        out_image, out_mask = transform(image, mask)
        assert out_image.shape == (3, 48, 40) and out_mask.shape == (48, 40)
        if augment == "strong":  # colour jitter changes the levels, not where they are
            continue
        agree = (out_image[0] * 255 / 80).round().long() == out_mask
        assert agree.float().mean() > 0.9  # only block edges blur when scaled (chance: 0.25)


def test_crops_larger_than_the_image_pad_the_mask_with_the_void_label() -> None:
    transform = SegmentationTransform("none", crop_size=(30, 30), ignore_index=255)
    image, mask = transform(np.zeros((10, 12, 3), np.uint8), np.ones((10, 12), np.int64))
    assert image.shape == (3, 30, 30) and (mask == 255).sum() == 30 * 30 - 10 * 12
    gray = SegmentationTransform("none", pad_to=(16, 16), ignore_index=255)
    image, mask = gray(np.zeros((10, 12), np.uint8), np.ones((10, 12), np.int64))
    assert image.shape == (1, 16, 16) and mask[10:, :].eq(255).all() and mask[:10, :12].eq(1).all()


def test_scale_crop_is_deeplabs_street_scene_recipe() -> None:
    """Scaled by 0.5-2.0, cropped back to the training size, padded with the void label."""
    transform = SegmentationTransform("scale-crop", (24, 32), ignore_index=11)
    image, mask = np.full((24, 32, 3), 200, np.uint8), np.zeros((24, 32), np.int64)
    seen_void = False
    for _ in range(20):
        out_image, out_mask = transform(image, mask)
        assert out_image.shape == (3, 24, 32) and out_mask.shape == (24, 32)
        assert set(out_mask.unique().tolist()) <= {0, 11}
        seen_void |= bool((out_mask == 11).any())  # a scale below 1 leaves padding
    assert seen_void
