"""``shapes``: synthetic circles, squares and triangles, generated from the seed."""

from __future__ import annotations

from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.segmentation_splits import (
    GRAY_OR_COLOR,
    transforms_for,
)
from cnnzoo.data.synthetic_shapes import SHAPE_CLASSES, SyntheticShapes

SHAPES_SPLIT_SIZES = {"train": 1000, "val": 200, "test": 200}
SHAPES_DEFAULT_SIZE = 64


@register_dataset("shapes", task="segmentation", channels=GRAY_OR_COLOR)
def load_shapes(request: DataRequest) -> DataSplits:
    """Synthetic circles, squares and triangles with texture and noise.

    Generated from the seed on demand: 1000/200/200 images of 64x64 or ``image_size``.
    """
    size = request.image_size or (SHAPES_DEFAULT_SIZE, SHAPES_DEFAULT_SIZE)
    train_transform, eval_transform = transforms_for(request, None, size)
    splits = {
        split: SyntheticShapes(
            count,
            size,
            (request.seed, number),
            request.in_channels or 3,  # the shapes are drawn in colour
            train_transform if split == "train" else eval_transform,
        )
        for number, (split, count) in enumerate(SHAPES_SPLIT_SIZES.items())
    }
    return DataSplits("segmentation", splits["train"], splits["val"], splits["test"], SHAPE_CLASSES)
