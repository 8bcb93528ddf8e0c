"""The synthetic shapes: generated from the seed, in grey or colour at any size."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from cnnzoo.data import load_data, plain_request


def test_shapes_are_generated_from_the_seed() -> None:
    first = load_data("shapes", plain_request(seed=3, augment="none"))
    again = load_data("shapes", plain_request(seed=3, augment="none"))
    other = load_data("shapes", plain_request(seed=4, augment="none"))
    assert first.task == "segmentation" and first.class_names[0] == "background"
    assert (len(first.train), len(first.val), len(first.test)) == (1000, 200, 200)
    assert torch.equal(first.val[5][0], again.val[5][0])
    assert not torch.equal(first.val[5][0], other.val[5][0])
    masks = torch.stack([first.train[i][1] for i in range(50)])
    assert set(masks.unique().tolist()) == {0, 1, 2, 3}
    image, mask = first.train[0]
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
    assert image.min() >= 0 and image.max() <= 1 and mask.dtype == torch.int64


def test_shapes_in_gray_at_any_size() -> None:
    request = plain_request(in_channels=1, image_size=(40, 56), augment="strong")
    splits = load_data("shapes", request)
    image, mask = splits.train[0]
    assert image.shape == (1, 40, 56) and mask.shape == (40, 56)
    images, masks = next(iter(DataLoader(splits.train, batch_size=8)))
    assert images.shape == (8, 1, 40, 56)
