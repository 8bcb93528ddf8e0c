"""``folder:IMAGES,MASKS`` (or ``seg-folder:IMAGES,MASKS``): images and same-named masks.

``folder:PATH`` with one folder is the class-per-folder tree of classification
(:mod:`cnnzoo.data.sources.class_folders`); :func:`~cnnzoo.data.base.source_name`
tells them apart. The folder holds out a seeded ``DataRequest.val_fraction`` of
its pairs (``--val-fraction``) for validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.mask_checks import (
    check_values,
    matched_pairs,
    scan_masks,
)
from cnnzoo.data.segmentation_splits import (
    GRAY_OR_COLOR,
    FileSegmentation,
    set_channels,
    transforms_for,
)
from cnnzoo.errors import CnnzooError

FOLDER_IGNORE_INDEX = 255  # void label of class-index PNG masks (the VOC convention)


@register_dataset("seg-folder", task="segmentation", channels=GRAY_OR_COLOR)
def load_folder(request: DataRequest) -> DataSplits:
    """``folder:IMAGES,MASKS`` (or ``seg-folder:``): images and same-named mask PNGs.

    Masks hold class indices (255 void), or 0/255 read as binary; MASKS/classes.txt
    optionally names the classes, one per line.
    """
    image_dir, mask_dir = _folder_pair_dirs(request.argument or "")
    bad_images = BadImageLog(request.skip_bad_images)
    pairs, values_of, sizes = scan_masks(
        matched_pairs(image_dir, mask_dir), "checking masks", bad_images
    )
    if len(pairs) < 2:
        raise CnnzooError(
            f"only {len(pairs)} image/mask pair(s) in {image_dir} and {mask_dir} could be "
            "read; training and validation need 2: replace the unreadable files"
        )
    values = {int(v) for found in values_of.values() for v in found}
    binary = values <= {0, 255}
    class_names = _folder_class_names(mask_dir, binary, values)
    if not binary:
        for mask_path, found in values_of.items():
            check_values(found, mask_path, len(class_names), FOLDER_IGNORE_INDEX)

    def decode(mask: np.ndarray, path: Path) -> np.ndarray:
        return (mask > 0).astype(np.uint8) if binary else mask

    train_pairs, val_pairs = _hold_out(pairs, request.val_fraction, request.seed)
    channels = set_channels(request, pairs[0][0])
    largest = (max(s[0] for s in sizes), max(s[1] for s in sizes))
    train_transform, eval_transform = transforms_for(
        request, FOLDER_IGNORE_INDEX, largest, uniform=len(sizes) == 1
    )
    return DataSplits(
        "segmentation",
        FileSegmentation(train_pairs, channels, decode, train_transform),
        FileSegmentation(val_pairs, channels, decode, eval_transform) if val_pairs else None,
        None,
        class_names,
        FOLDER_IGNORE_INDEX,
        skipped_images=bad_images.skipped,
    )


def _folder_pair_dirs(argument: str) -> tuple[Path, Path]:
    """The IMAGES and MASKS folders of ``seg-folder:IMAGES,MASKS``, both existing."""
    parts = [p for p in argument.split(",") if p]
    if len(parts) != 2:
        raise CnnzooError(
            "give the image and mask folders as seg-folder:IMAGES,MASKS "
            f"(e.g. seg-folder:data/images,data/masks), got {argument!r}"
        )
    image_dir, mask_dir = (Path(p).expanduser() for p in parts)
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise CnnzooError(f"folder {folder} does not exist")
    return image_dir, mask_dir


def _hold_out(
    pairs: list[tuple[Path, Path]], fraction: float, seed: int
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(training, validation) pairs: a seeded ``fraction`` of them (at least one) validates;
    a ``fraction`` of 0 holds none out."""
    if fraction == 0:
        return pairs, []
    order = np.random.default_rng(seed).permutation(len(pairs))
    held_out = min(len(pairs) - 1, max(1, round(fraction * len(pairs))))
    val_pairs = [pairs[i] for i in sorted(order[:held_out])]
    train_pairs = [pairs[i] for i in sorted(order[held_out:])]
    return train_pairs, val_pairs


def _folder_class_names(mask_dir: Path, binary: bool, values: set[int]) -> list[str]:
    """From MASKS/classes.txt (one name per line) if present, else from the labels found."""
    listing = mask_dir / "classes.txt"
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        if len(names) < 2:
            raise CnnzooError(f"{listing} must list at least 2 class names, one per line")
        return names
    if binary:
        return ["background", "foreground"]
    labels = values - {FOLDER_IGNORE_INDEX}
    return [f"class{i}" for i in range(max(labels) + 1)] if labels else ["class0", "class1"]
