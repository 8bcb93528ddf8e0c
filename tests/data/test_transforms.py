"""Batch-wise augmentation: per-sample random maps, images and masks kept aligned."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.transforms import AugmentPolicy, augment_batch, augment_policy


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` moved by (dy, dx) whole pixels, with zeros shifted in."""
    out = torch.zeros_like(image)
    height, width = image.shape[-2:]
    out[..., max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        ..., max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)
    ]
    return out


def test_basic_policy_shifts_each_image_by_whole_pixels_within_an_eighth() -> None:
    images = torch.rand(16, 1, 16, 16)
    generator = torch.Generator().manual_seed(0)
    moved, _ = augment_batch(images, None, augment_policy("basic", False), generator)
    offsets = []
    for original, result in zip(images, moved):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.allclose(shifted(original, dy, dx), result)
        ]
        assert len(matches) == 1  # exactly one shift of at most 16/8 = 2 pixels explains it
        offsets.append(matches[0])
    assert len(set(offsets)) > 3  # drawn per sample, not once per batch


def test_flips_only_where_the_label_survives_them() -> None:
    assert augment_policy("basic", mirror_invariant=False).flip is False
    assert augment_policy("strong", mirror_invariant=True).flip is True
    flip_only = AugmentPolicy(flip=True)
    images = torch.arange(2 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    generator = torch.Generator().manual_seed(1)
    flipped, _ = augment_batch(images.repeat(8, 1, 1, 1), None, flip_only, generator)
    mirrored = [torch.equal(f, i.flip(-1)) for f, i in zip(flipped, images.repeat(8, 1, 1, 1))]
    assert any(mirrored) and not all(mirrored)


def test_pad_crop_is_basic_marked_for_the_streamed_pad_and_crop() -> None:
    for mirror_invariant in (False, True):
        pad_crop = augment_policy("pad-crop", mirror_invariant)
        assert pad_crop.pad_crop and not augment_policy("basic", mirror_invariant).pad_crop
        assert pad_crop == replace(augment_policy("basic", mirror_invariant), pad_crop=True)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    basic, _ = augment_batch(
        images, None, augment_policy("basic", True), torch.Generator().manual_seed(4)
    )
    pad_crop, _ = augment_batch(
        images, None, augment_policy("pad-crop", True), torch.Generator().manual_seed(4)
    )
    assert torch.equal(pad_crop, basic) and not torch.equal(basic, images)


def test_affine_is_strong_without_erasing() -> None:
    affine, strong = augment_policy("affine", False), augment_policy("strong", False)
    assert affine.rotation == strong.rotation == 15.0 and affine.scale == strong.scale == 0.1
    assert affine.erase == 0.0 < strong.erase
    images = torch.full((64, 1, 16, 16), 200, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    warped, _ = augment_batch(images, None, affine, generator)
    # Only the borders a rotation or shift uncovers go dark, never a patch in the middle.
    assert bool((warped[:, :, 6:10, 6:10] > 0).all())


@pytest.mark.parametrize("policy", ["basic", "affine", "strong"])
def test_masks_move_with_their_images_and_void_fills_the_border(policy: str) -> None:
    generator = torch.Generator().manual_seed(2)
    masks = torch.randint(0, 4, (8, 4, 4), generator=generator)
    masks = masks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # 32x32 of 8x8 blocks
    images = (masks.float() + 1).unsqueeze(1) / 5  # each label has its own intensity
    rule = augment_policy(policy, True)
    rule = AugmentPolicy(rule.shift, rule.rotation, rule.scale, rule.flip, erase=0.0)
    moved, moved_masks = augment_batch(images, masks, rule, generator, ignore_index=255)
    labeled = moved_masks != 255
    expected = (moved_masks.float() + 1) / 5
    agree = (moved[:, 0] - expected).abs() < 1e-4
    if policy == "basic":  # whole-pixel moves: exact
        assert agree[labeled].all() and (moved[:, 0][~labeled] == 0).all()
    else:  # bilinear resampling blurs the block edges; a misaligned mask would agree ~25 %
        assert agree[labeled].float().mean() > 0.7
    assert (~labeled).any()


def test_in_memory_set_resizes_lazily_when_presizing_would_use_too_much_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cnnzoo.data.in_memory as in_memory

    monkeypatch.setattr(in_memory, "PRESIZE_LIMIT_BYTES", 100)
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    dataset = InMemoryImages(images, torch.arange(4), Normalization((0.0,), (1.0,)), size=(20, 20))
    assert dataset.images.shape[-2:] == (8, 8)  # stored at native size
    batch, targets = dataset.batch(torch.tensor([1, 3]))
    assert batch.shape == (2, 1, 20, 20) and targets.tolist() == [1, 3]
