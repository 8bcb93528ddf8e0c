"""The split contract's defaults, so the engine can read every member without asking for it.

Each registered source is checked against the contract in test_classification.py and
test_segmentation_data.py, on the same fake files as its other tests.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.protocol import (
    ClassificationSplit,
    DatasetView,
    SegmentationSplit,
    Split,
    as_split,
)


def _in_memory(masks: bool) -> InMemoryImages:
    images = torch.arange(6 * 3 * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8)
    targets = torch.randint(0, 3, (6, 4, 4) if masks else (6,))
    return InMemoryImages(images.view(6, 3, 4, 4), targets, Normalization((0.5,) * 3, (0.2,) * 3))


def test_a_plain_dataset_is_wrapped_with_the_defaults() -> None:
    plain = TensorDataset(torch.zeros(5, 1, 2, 2), torch.arange(5))
    assert not isinstance(plain, Split)
    split = as_split(plain)
    assert isinstance(split, SegmentationSplit) and len(split) == 5
    assert split.normalization is None and split.batch is None
    assert [int(target) for target in split.iter_masks()] == list(range(5))
    share = split.subset(torch.tensor([3, 1]))
    assert [int(share[i][1]) for i in range(len(share))] == [3, 1]


def test_a_split_is_served_as_it_is() -> None:
    split = _in_memory(masks=False)
    assert as_split(split) is split
    assert isinstance(split, ClassificationSplit) and split.batch is not None


def test_in_memory_masks_are_the_stored_targets() -> None:
    split = _in_memory(masks=True)
    assert isinstance(split, SegmentationSplit)
    assert torch.equal(torch.stack(list(split.iter_masks())), split.targets)


def test_a_view_keeps_the_normalization_of_its_split() -> None:
    split = _in_memory(masks=False)
    view = DatasetView(split, [4, 0])
    assert view.normalization == split.normalization and len(view) == 2
    assert torch.equal(view[0][0], split[4][0])
