"""Checks of image/mask pairs, made before any training starts.

Mistakes in a user's files (a mask that does not match its image's size, a
label beyond the classes, an image without a mask) are reported with the
file's name; so is a file that cannot be decoded, whose pair
``--skip-bad-images`` leaves out instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    list_images,
    read_image_size,
    read_mask,
)
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress


def image_files(folder: Path) -> dict[str, Path]:
    """The images of ``folder`` by file name without suffix, which pairs images with masks."""
    return {path.stem: path for path in list_images(folder)}


def matched_pairs(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs matched by file name, or the first few names without a partner."""
    images, masks = image_files(image_dir), image_files(mask_dir)
    if not images:
        raise CnnzooError(f"{image_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    without_mask = sorted(set(images) - set(masks))
    without_image = sorted(set(masks) - set(images))
    if without_mask or without_image:
        problems = [f"{images[n].name} has no mask in {mask_dir}" for n in without_mask[:3]]
        problems += [f"{masks[n].name} has no image in {image_dir}" for n in without_image[:3]]
        raise CnnzooError(
            f"images and masks must have matching file names: {'; '.join(problems)}"
            + (" ..." if len(without_mask) + len(without_image) > 3 else "")
        )
    pairs = [(images[name], masks[name]) for name in sorted(images)]
    if len(pairs) < 2:
        raise CnnzooError("an image/mask folder needs at least 2 pairs (train and validation)")
    return pairs


def scan_masks(
    pairs: Sequence[tuple[Path, Path]], description: str, bad_images: BadImageLog
) -> tuple[list[tuple[Path, Path]], dict[Path, np.ndarray], set[tuple[int, int]]]:
    """Every mask read once before training: the readable pairs, their label values by
    mask path, and the sizes found.

    Each mask is checked against its image's size here, so a wrong file is
    named before the first epoch rather than in the middle of one. A mask
    that cannot be decoded, or an image whose header cannot be read, goes to
    ``bad_images``: it stops the run naming the file, or (``--skip-bad-images``)
    its pair is left out and recorded.
    """
    kept: list[tuple[Path, Path]] = []
    values_of: dict[Path, np.ndarray] = {}
    sizes: set[tuple[int, int]] = set()
    for image_path, mask_path in progress(pairs, description, unit="mask"):
        try:
            mask = read_mask(mask_path)
            check_sizes(image_path, mask, mask_path)
        except UnreadableImage as error:
            bad_images.report_error(error)
            continue
        kept.append((image_path, mask_path))
        values_of[mask_path] = np.unique(mask)
        sizes.add((mask.shape[0], mask.shape[1]))
    return kept, values_of, sizes


def check_values(
    values: np.ndarray, path: Path, num_classes: int, ignore_index: int | None
) -> None:
    """A clear error naming ``path`` and the value if a label is not a class or the void label."""
    bad = [int(v) for v in values if v >= num_classes and v != ignore_index]
    if bad:
        void = "" if ignore_index is None else f" or {ignore_index} (void)"
        raise CnnzooError(
            f"mask {path} has label value {bad[0]}, but there are {num_classes} classes "
            f"(labels 0-{num_classes - 1}{void}); fix the mask or the list of classes"
        )


def check_sizes(image_path: Path, mask: np.ndarray, mask_path: Path) -> None:
    """A clear error naming both files if a mask's size is not its image's."""
    height, width = read_image_size(image_path)
    if mask.shape[:2] != (height, width):
        raise CnnzooError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} "
            f"is {width}x{height} (width x height); masks must match their images pixel for pixel"
        )
