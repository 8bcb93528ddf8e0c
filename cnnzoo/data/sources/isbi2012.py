"""``isbi2012:PATH``: the 30 electron-microscopy slices of the ISBI 2012 challenge."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.images import (
    read_image,
    read_mask,
)
from cnnzoo.data.mask_checks import (
    check_sizes,
    image_files,
)
from cnnzoo.data.segmentation_splits import (
    GRAY_OR_COLOR,
    InMemorySegmentation,
    set_channels,
    transforms_for,
)
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress

ISBI_CLASSES = ["membrane", "cell"]  # mask 0 = membrane (cell border), 255 = cell interior
ISBI_TRAIN_SLICES = 24  # the first 24 slices train, the last 6 validate


def _isbi_root(request: DataRequest) -> Path:
    if request.argument:
        return Path(request.argument).expanduser()
    if request.data_dir is None:
        raise CnnzooError("give the ISBI 2012 folder as isbi2012:PATH or with --data-dir")
    nested = request.data_dir / "isbi2012"
    return nested if (nested / "images").is_dir() else request.data_dir


@register_dataset("isbi2012", task="segmentation", channels=GRAY_OR_COLOR)
def load_isbi2012(request: DataRequest) -> DataSplits:
    """``isbi2012:PATH``: the 30 ISBI 2012 EM slices, 0 membrane and 1 cell.

    images/NN.png and masks/NN.png; the first 24 train (an epoch: as many random
    crops per slice as fit), the last 6 validate.
    """
    root = _isbi_root(request)
    image_dir, mask_dir = root / "images", root / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise CnnzooError(f"{root} is not the ISBI 2012 folder: it needs images/ and masks/")
    images, masks = image_files(image_dir), image_files(mask_dir)
    names = sorted(images)
    missing = [n for n in names if n not in masks]
    if missing:
        raise CnnzooError(f"{images[missing[0]].name} has no mask in {mask_dir}")
    if len(names) <= ISBI_TRAIN_SLICES:
        raise CnnzooError(f"{image_dir} holds {len(names)} slices; ISBI 2012 has 30")
    pixels, labels = [], []
    channels = set_channels(request, images[names[0]])
    for name in progress(names, "reading ISBI 2012 slices", unit="slice"):
        mask = read_mask(masks[name])
        check_sizes(images[name], mask, masks[name])
        stray = sorted(set(np.unique(mask).tolist()) - {0, 255})
        if stray:
            raise CnnzooError(
                f"mask {masks[name]} has value {stray[0]}; ISBI masks hold 0 (membrane) "
                "and 255 (cell) only"
            )
        pixels.append(read_image(images[name], channels))
        labels.append((mask == 255).astype(np.uint8))
    sizes = {label.shape for label in labels}
    if len(sizes) > 1:
        raise CnnzooError(f"the ISBI slices in {image_dir} differ in size: {sorted(sizes)}")
    train_transform, eval_transform = transforms_for(request, None, labels[0].shape)
    # 24 slices make a short epoch of crops: draw as many crops per slice as fit in it.
    crop = request.image_size or labels[0].shape
    repeats = max(1, (labels[0].shape[0] // crop[0]) * (labels[0].shape[1] // crop[1]))
    cut = ISBI_TRAIN_SLICES
    return DataSplits(
        "segmentation",
        InMemorySegmentation(pixels[:cut], labels[:cut], train_transform, repeats),
        InMemorySegmentation(pixels[cut:], labels[cut:], eval_transform),
        None,
        ISBI_CLASSES,
        None,
    )
