"""Image folders of any size, written to disk for tests and benchmarks.

Real image folders (ImageNet's 1.3 million JPEGs) cannot ship with a library,
yet the code that streams them from disk must be tested and timed at their
scale. :func:`write_image_folder` writes a seeded folder of JPEG files in the
layout ``folder:PATH`` reads: one sub-folder per class, optionally under
``train/``, ``val/`` and ``test/``.

Each class has its own colour and stripe orientation, drawn with random
phase, position and noise, so a network can learn the classes and a
streamed run and an in-memory run of the same folder can be compared by
accuracy, while no two files are the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress

# The split folders of the layout torchvision's ImageFolder and ImageNet use.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FolderSpec:
    """What :func:`write_image_folder` writes."""

    images: int  # files in all, over every split and class
    classes: int = 10
    size: tuple[int, int] = (160, 160)  # (height, width) of every image
    seed: int = 0
    splits: tuple[str, ...] = ()  # () writes PATH/CLASS/...; else PATH/SPLIT/CLASS/...
    split_shares: tuple[float, ...] = ()  # share of the images per split; default equal
    quality: int = 90  # JPEG quality, as cameras and ImageNet's files are near


def class_image(
    label: int, classes: int, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """One RGB image of class ``label``: the class's hue and stripe angle, random otherwise."""
    height, width = size
    hue = 2 * math.pi * label / classes
    color = 127 + 100 * np.cos(hue + np.array([0.0, 2.1, 4.2]))
    angle = math.pi * label / classes + rng.normal(0, 0.05)
    period = rng.uniform(8, 16) * max(height, width) / 160
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi)
    stripes = np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period + phase)
    pixels = color[None, None, :] * (0.75 + 0.25 * stripes[..., None])
    pixels += rng.normal(0, 12, size=(height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_image_folder(root: str | Path, spec: FolderSpec, *, workers: int = 1) -> list[Path]:
    """Write ``spec.images`` JPEG files under ``root``; the paths written, in a fixed order.

    The same spec writes the same bytes whatever ``workers`` is: each file's
    random stream is seeded by (seed, its index). ``root`` must not exist yet,
    or be empty, so that nothing already there is overwritten.
    """
    root = Path(root)
    _check_spec(spec)
    if root.exists() and any(root.iterdir()):
        raise CnnzooError(f"{root} is not empty; give a new folder for the synthetic images")
    jobs = _jobs(root, spec)
    for directory in sorted({path.parent for path, _, _ in jobs}):
        directory.mkdir(parents=True, exist_ok=True)
    arguments = [(path, label, index, spec) for path, label, index in jobs]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            done = pool.map(_write_one, arguments, chunksize=64)
            for _ in progress(done, "writing images", total=len(arguments), unit="img"):
                pass
    else:
        for argument in progress(arguments, "writing images", unit="img"):
            _write_one(argument)
    return [path for path, _, _ in jobs]


def _check_spec(spec: FolderSpec) -> None:
    if spec.classes < 2:
        raise CnnzooError(f"a classification folder needs at least 2 classes, not {spec.classes}")
    if min(spec.size) < 8:
        raise CnnzooError(f"images must be at least 8x8 pixels, not {spec.size}")
    unknown = [name for name in spec.splits if name not in SPLITS]
    if unknown:
        raise CnnzooError(f"splits must be among {', '.join(SPLITS)}, not {', '.join(unknown)}")
    if spec.split_shares and len(spec.split_shares) != len(spec.splits):
        raise CnnzooError("give one share per split")
    if spec.images < spec.classes * max(len(spec.splits), 1):
        raise CnnzooError(
            f"{spec.images} images cannot give each of {spec.classes} classes an image "
            f"in every split; ask for more images"
        )


def _jobs(root: Path, spec: FolderSpec) -> list[tuple[Path, int, int]]:
    """(path, label, index) of every file: classes take turns so each gets an equal share."""
    splits: Sequence[str] = spec.splits or ("",)
    shares = spec.split_shares or tuple(1 / len(splits) for _ in splits)
    counts = [round(spec.images * share) for share in shares]
    counts[0] += spec.images - sum(counts)
    width = len(str(spec.images))
    jobs, index = [], 0
    for split, count in zip(splits, counts):
        for position in range(count):
            label = position % spec.classes
            folder = root / split / f"class_{label:03d}" if split else root / f"class_{label:03d}"
            jobs.append((folder / f"{index:0{width}d}.jpg", label, index))
            index += 1
    return jobs


def _write_one(argument: tuple[Path, int, int, FolderSpec]) -> None:
    from PIL import Image

    path, label, index, spec = argument
    rng = np.random.default_rng((spec.seed, index))
    pixels = class_image(label, spec.classes, spec.size, rng)
    Image.fromarray(pixels).save(path, format="JPEG", quality=spec.quality)
