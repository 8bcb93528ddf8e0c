"""Synthetic circles, squares and triangles: segmentation images made from a seed.

The images need no download and no disk, so the ``shapes`` source
(:mod:`cnnzoo.data.sources.shapes`) trains and tests every segmentation
network offline.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cnnzoo.data.protocol import DataSplit
from cnnzoo.data.segmentation_transforms import SegmentationTransform

SHAPE_CLASSES = ["background", "circle", "square", "triangle"]


def make_shapes_sample(
    size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A textured, noisy (H, W, 3) uint8 image of 1-4 shapes, and its (H, W) label mask.

    Each shape (circle, square or triangle, randomly sized, rotated and
    coloured) is filled with a striped texture of random orientation and
    frequency; the background is a colour gradient with its own stripes; later
    shapes occlude earlier ones. Gaussian noise is added last. The class
    cannot be read from colour or texture, only from the outline.
    """
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    mask = np.zeros((height, width), np.uint8)
    side = min(height, width)
    canvas = _textured_fill(rng, xs, ys, base=rng.uniform(0, 255, 3))
    canvas += rng.uniform(-40, 40, 3) * (xs / max(width - 1, 1))[..., None]  # gradient
    for _ in range(rng.integers(1, 5)):
        label = int(rng.integers(1, len(SHAPE_CLASSES)))
        radius = rng.uniform(0.1, 0.25) * side
        cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        inside = _shape_region(SHAPE_CLASSES[label], xs - cx, ys - cy, radius, rng)
        texture = _textured_fill(rng, xs, ys, base=rng.uniform(0, 255, 3))
        canvas[inside] = texture[inside]
        mask[inside] = label
    canvas += rng.normal(0, 12, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8), mask


class SyntheticShapes(DataSplit):
    """``count`` shape images, each generated on demand from (seed, split, index).

    Nothing is stored and nothing is downloaded; the same seed always gives
    the same images.
    """

    def __init__(
        self,
        count: int,
        size: tuple[int, int],
        seed: tuple[int, int],
        in_channels: int,
        transform: SegmentationTransform,
    ) -> None:
        self.count, self.size, self.seed = count, size, seed
        self.in_channels, self.transform = in_channels, transform

    def __len__(self) -> int:
        return self.count

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        image, mask = make_shapes_sample(self.size, np.random.default_rng((*self.seed, index)))
        if self.in_channels == 1:
            image = np.asarray(Image.fromarray(image).convert("L"))
        return image, mask

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.transform(*self.sample(index))

    def iter_masks(self) -> Iterator[Tensor]:
        return (torch.from_numpy(self.sample(i)[1].astype(np.int64)) for i in range(self.count))


def _textured_fill(
    rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, base: np.ndarray
) -> np.ndarray:
    """A colour modulated by stripes of random orientation and period (4-16 pixels)."""
    angle, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
    stripes = np.sin(2 * math.pi * (xs * math.cos(angle) + ys * math.sin(angle)) / period)
    return base[None, None, :] + rng.uniform(10, 35) * stripes[..., None]


def _shape_region(
    kind: str, dx: np.ndarray, dy: np.ndarray, radius: float, rng: np.random.Generator
) -> np.ndarray:
    """Pixels inside a shape of ``kind`` centred at (0, 0), rotated at random."""
    if kind == "circle":
        return dx**2 + dy**2 <= radius**2
    angle = rng.uniform(0, 2 * math.pi)
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    if kind == "square":
        half = radius / math.sqrt(2) * 1.2  # about the circle's area
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    # Equilateral triangle with circumradius `radius`: inside all three edge half-planes.
    inside = np.ones(dx.shape, bool)
    for edge in range(3):
        normal = 2 * math.pi * edge / 3
        inside &= u * math.cos(normal) + v * math.sin(normal) <= radius / 2
    return inside
