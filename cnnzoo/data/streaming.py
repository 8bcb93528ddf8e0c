"""Image folders read from disk while training, for sets too large to hold in memory.

ImageNet's 1.28 million training images take about 190 GB decoded at
224x224, so they cannot be one tensor in RAM as the small sets are
(:mod:`cnnzoo.data.in_memory`). Here each image is read from its file when a
batch needs it, by ``DataLoader`` worker processes, as torchvision's
reference scripts and timm do:

* training takes a random crop of 8 % to 100 % of the image's area with an
  aspect ratio between 3/4 and 4/3, resized to the training size, and
  mirrors half of the images where the set allows it (RandomResizedCrop,
  Szegedy et al. 2015, "Going Deeper with Convolutions", arXiv:1409.4842,
  sec. 6; torchvision's ``transforms.v2.RandomResizedCrop`` defaults),
  then, where asked for, an AutoAugment, RandAugment or TrivialAugment policy
  and RandomErasing, torchvision's v2 transforms on each uint8 image (the
  same options as the in-memory path, :mod:`cnnzoo.data.transforms`);
* ``--augment pad-crop`` trains instead on He et al.'s pad-and-crop (2015,
  "Deep Residual Learning for Image Recognition", arXiv:1512.03385, sec. 4.2):
  evaluation's centre crop, padded by 1/8 of each side with zeros (4 pixels
  of 32), a random crop of the size, and a flip of half the images;
* evaluation resizes so the training size is ``crop_ratio`` (0.875: 224 of
  256) of the shorter side and takes the centre, as torchvision's reference
  evaluation does.

The crop box is drawn before the file is decoded, from the image's own size,
and the crop and resize are one step on the decoded tensor
(:func:`~cnnzoo.data.images.crop_and_resize`). Workers hand back uint8
images, a quarter of the bytes of float ones, and the batch is converted and
normalised once in the main process.

Every random draw of a sample comes from (the seed of the epoch's
generator, the sample's index), never from a worker's own random
state, so a run is the same with any number of workers or processes.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from cnnzoo.data.bad_images import BadImageLog, readable_batches, readable_loader
from cnnzoo.data.images import IMAGE_EXTENSIONS, crop_and_resize, decode_image, list_images
from cnnzoo.data.in_memory import Normalization
from cnnzoo.data.protocol import DataSplit
from cnnzoo.data.transforms import (
    CROP_AREA,
    CROP_ASPECT,
    AugmentPolicy,
    auto_augment_transform,
    seeded_torch_draws,
)
from cnnzoo.errors import CnnzooError

# Batches each worker prepares ahead, so a slow file does not stall the step.
PREFETCH_BATCHES = 4

Box = tuple[int, int, int, int]  # (top, left, height, width) in the decoded image's pixels


def list_class_files(folder: Path, class_names: list[str]) -> tuple[list[Path], Tensor]:
    """Every image under folder/CLASS/, class by class, and its class index; no decoding."""
    unknown = sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir() and d.name not in class_names and list_images(d)
    )
    if unknown:
        raise CnnzooError(f"{folder} has classes the training folder lacks: {', '.join(unknown)}")
    files = [
        (path, label)
        for label, name in enumerate(class_names)
        if (folder / name).is_dir()
        for path in list_images(folder / name)
    ]
    if not files:
        raise CnnzooError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return [path for path, _ in files], torch.tensor([label for _, label in files])


def default_workers() -> int:
    """Worker processes when ``--workers`` is unset: one per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def choose_mode(requested: str, decoded_bytes: int, budget_mb: int) -> tuple[str, str]:
    """("memory" or "stream", why): ``auto`` streams when the decoded set exceeds the budget."""
    size = _describe_bytes(decoded_bytes)
    if requested not in ("auto", "memory", "stream"):
        raise CnnzooError(f"data mode must be auto, memory or stream, not {requested!r}")
    if requested != "auto":
        return requested, f"{size} decoded, --data-mode {requested}"
    if decoded_bytes > budget_mb * 2**20:
        return "stream", f"{size} decoded > {budget_mb:,} MB budget"
    return "memory", f"{size} decoded <= {budget_mb:,} MB budget"


def _describe_bytes(count: int) -> str:
    if count >= 2**30:
        return f"{count / 2**30:.1f} GB"
    return f"{count / 2**20:,.0f} MB" if count >= 10 * 2**20 else f"{count / 2**20:.1f} MB"


# --- where each sample is cropped -----------------------------------------------------------


def random_resized_box(height: int, width: int, rng: random.Random) -> Box:
    """A RandomResizedCrop box, drawn as torchvision's ``get_params`` draws it.

    Ten tries at a random area and log-uniform aspect ratio that fit the
    image; failing those, the largest centred box within the ratio range.
    """
    area = height * width
    log_low, log_high = math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1])
    for _ in range(10):
        target = area * rng.uniform(*CROP_AREA)
        aspect = math.exp(rng.uniform(log_low, log_high))
        crop_width = round(math.sqrt(target * aspect))
        crop_height = round(math.sqrt(target / aspect))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            top = rng.randint(0, height - crop_height)
            left = rng.randint(0, width - crop_width)
            return top, left, crop_height, crop_width
    aspect = width / height
    if aspect < CROP_ASPECT[0]:
        crop_width, crop_height = width, round(width / CROP_ASPECT[0])
    elif aspect > CROP_ASPECT[1]:
        crop_height, crop_width = height, round(height * CROP_ASPECT[1])
    else:
        crop_width, crop_height = width, height
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


def center_box(height: int, width: int, size: tuple[int, int], crop_ratio: float) -> Box:
    """The region that resizing to ``size / crop_ratio`` and a centre crop of ``size`` shows.

    Cropping that region straight to ``size`` is one resize instead of two.
    """
    scale = max(size) / crop_ratio / min(height, width)  # the shorter side to size/crop_ratio
    crop_height = min(height, max(1, round(size[0] / scale)))
    crop_width = min(width, max(1, round(size[1] / scale)))
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


def sample_seed(key: int, index: int) -> int:
    """The seed of one sample's draws in one epoch, the same in any worker or process."""
    return int.from_bytes(hashlib.blake2b(f"{key}/{index}".encode(), digest_size=8).digest())


# --- the samples, as workers read them ----------------------------------------------------


@dataclass(frozen=True)
class SampleRecipe:
    """How each file becomes a sample."""

    size: tuple[int, int]  # (H, W) served
    channels: int = 3  # 1 grey, 3 colour
    random_crop: bool = False  # training's RandomResizedCrop; False: evaluation's centre crop
    mirror: bool = False  # flip half the training images left to right
    crop_ratio: float = 0.875  # evaluation: the size's share of the resized shorter side
    auto_augment: str = "none"  # none | autoaugment | randaugment | trivialaugment, on uint8
    random_erasing: float = 0.0  # probability of torchvision's RandomErasing
    # The colour RandomErasing fills with: the normalisation's mean on the 0..255 scale, so
    # an erased pixel is (to a 255th) 0 after normalisation, as when erasing normalised floats.
    erase_fill: tuple[int, ...] = (0,)
    # He et al.'s pad-and-crop after the centre crop: the zero padding as a share of each
    # side (1/8: 4 pixels of 32), then a random crop back to the size; 0: none.
    pad_crop: float = 0.0

    @property
    def draws_with_torch(self) -> bool:
        """Whether a sample needs torch's generator (the v2 policies draw from it)."""
        return self.auto_augment != "none" or self.random_erasing > 0


def training_recipe(
    evaluation: SampleRecipe, policy: AugmentPolicy, mean: Sequence[float]
) -> SampleRecipe:
    """The training samples' recipe for ``policy``, the one the in-memory path applies.

    A policy that moves images (``--augment basic`` and up, or
    ``--random-resized-crop``) gets RandomResizedCrop: it stands for the
    shifts, rotation and zoom, as ``--random-resized-crop`` does in memory.
    ``--augment pad-crop`` alone gets the paper's pad-and-crop of the centre
    crop, the very shifts of ``basic`` in memory. ``--augment none`` alone keeps
    evaluation's centre crop. ``--augment strong``'s erasing is
    torchvision's RandomErasing here, at its probability unless
    ``--random-erasing`` asks for more. ``mean`` is the normalisation's, on [0, 1].
    """
    pad_crop = policy.pad_crop and not policy.resized_crop
    moves = bool(policy.shift or policy.rotation or policy.scale or policy.resized_crop)
    return replace(
        evaluation, random_crop=moves and not pad_crop, mirror=policy.flip,
        pad_crop=policy.shift if pad_crop else 0.0, auto_augment=policy.auto_augment,
        random_erasing=max(policy.random_erasing, policy.erase),
        erase_fill=tuple(round(255 * m) for m in mean),
    )  # fmt: skip


def pad_and_crop(image: Tensor, fraction: float, rng: random.Random) -> Tensor:
    """``image`` (C, H, W) padded by ``round(fraction * side)`` zeros, cropped back at random.

    He et al. 2015 (sec. 4.2): 4 pixels of 32 on each side, then a random
    32x32 crop, i.e. a whole-pixel shift of at most 4 pixels each way.
    """
    height, width = image.shape[-2:]
    pad_y, pad_x = round(fraction * height), round(fraction * width)
    top, left = rng.randint(0, 2 * pad_y), rng.randint(0, 2 * pad_x)
    padded = torch.nn.functional.pad(image, (pad_x, pad_x, pad_y, pad_y))
    return padded[..., top : top + height, left : left + width]


def _random_geometry(pixels: Tensor, recipe: SampleRecipe, rng: random.Random) -> Tensor:
    """A training crop of decoded ``pixels``: RandomResizedCrop or pad-and-crop, then a flip.

    All drawn from ``rng``, in this order: the box, the pad-and-crop offsets, the flip.
    """
    height, width = pixels.shape[-2:]
    if recipe.random_crop:
        box = random_resized_box(height, width, rng)
    else:
        box = center_box(height, width, recipe.size, recipe.crop_ratio)
    image = crop_and_resize(pixels, box, recipe.size)
    if recipe.pad_crop:
        image = pad_and_crop(image, recipe.pad_crop, rng)
    if recipe.mirror and rng.random() < 0.5:
        image = image.flip(-1)
    return image


def _augment(image: Tensor, recipe: SampleRecipe, seed: int) -> Tensor:
    """``recipe``'s v2 policy, then RandomErasing, on one uint8 image, drawn from ``seed``.

    The order of torchvision's reference training: the policy after the crop
    and flip, random erasing last.
    """
    from torchvision.transforms import v2

    with seeded_torch_draws(seed):
        if recipe.auto_augment != "none":
            image = auto_augment_transform(recipe.auto_augment)(image)
        if recipe.random_erasing:
            erase = v2.RandomErasing(p=recipe.random_erasing, value=list(recipe.erase_fill))
            image = erase(image)
    return image


class FolderSamples(Dataset):
    """uint8 (C, H, W) images and class indices of files, prepared by ``recipe``.

    Items are ``(index, key)``: ``key`` seeds the epoch's random draws.
    Paths are kept in one NumPy byte array, not a list of strings, so worker
    processes forked from the main one share its pages instead of copying
    them as Python's reference counts touch each string.
    """

    def __init__(self, files: Sequence[Path], targets: Tensor, recipe: SampleRecipe) -> None:
        self.paths = np.array([os.fsencode(path) for path in files])
        self.targets = targets.long()
        self.recipe = recipe

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, int]) -> tuple[Tensor, int]:
        index, key = item
        recipe = self.recipe
        pixels = decode_image(Path(os.fsdecode(self.paths[index])), recipe.channels)
        height, width = pixels.shape[-2:]
        if recipe.random_crop or recipe.pad_crop:
            image = _random_geometry(pixels, recipe, random.Random(sample_seed(key, index)))
        else:
            box = center_box(height, width, recipe.size, recipe.crop_ratio)
            image = crop_and_resize(pixels, box, recipe.size)
        if recipe.draws_with_torch:
            # Its own stream, apart from the crop's: the policy leaves the crops as they were.
            image = _augment(image, recipe, sample_seed(key, -1 - index))
        return image, int(self.targets[index])

    def subset(self, indices: Tensor) -> FolderSamples:
        clone = FolderSamples.__new__(FolderSamples)
        clone.paths, clone.targets = self.paths[indices.numpy()], self.targets[indices]
        clone.recipe = self.recipe
        return clone


class _EpochBatches:
    """A batch sampler whose batches are replaced each epoch, so the same workers serve all."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StreamedImages(DataSplit):
    """A classification split read from its files by worker processes, batch by batch."""

    def __init__(
        self, samples: FolderSamples, normalization: Normalization, workers: int | None = None
    ) -> None:
        self.samples = samples
        self.normalization = normalization
        self.workers = default_workers() if workers is None else workers
        self._loaders: dict[int, tuple[DataLoader, _EpochBatches]] = {}

    @property
    def targets(self) -> Tensor:
        return self.samples.targets

    @property
    def crop_ratio(self) -> float:
        return self.samples.recipe.crop_ratio

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        """One normalised float image, prepared as evaluation or the first epoch would."""
        image, target = self.samples[(index, 0)]
        return self.normalization.apply_to_bytes(image[None])[0], torch.tensor(target)

    def subset(self, indices: Tensor) -> StreamedImages:
        return StreamedImages(self.samples.subset(indices), self.normalization, self.workers)

    def load_batches(
        self, batches: Sequence[Sequence[int]], *, workers: int | None = None,
        generator: torch.Generator | None = None, epoch_key: int | None = None,
        bad_images: BadImageLog | None = None, minimum: int = 1,
    ) -> Iterator[tuple[Tensor, Tensor]]:  # fmt: skip
        """Normalised float batches of ``batches``, read by persistent worker processes.

        The epoch's key is ``epoch_key``, else the seed of ``generator`` (every
        process's epoch generator has the same, and a resumed epoch restores
        it), and each sample's crop and flip follow from it and its index. A
        file that fails to decode goes to ``bad_images`` (None: stop).
        """
        workers = self.workers if workers is None else workers
        key = epoch_key if epoch_key is not None else (
            generator.initial_seed() if generator is not None else 0
        )  # fmt: skip
        loader, sampler = self._loader(workers)
        sampler.batches = [[(int(index), key) for index in batch] for batch in batches]
        for images, targets in readable_batches(
            loader, bad_images or BadImageLog(), minimum=minimum
        ):
            yield self.normalization.apply_to_bytes(images), targets

    def _loader(self, workers: int) -> tuple[DataLoader, _EpochBatches]:
        if workers not in self._loaders:
            sampler = _EpochBatches()
            loader = readable_loader(
                self.samples,
                batch_sampler=sampler,
                num_workers=workers,
                persistent_workers=workers > 0,
                prefetch_factor=PREFETCH_BATCHES if workers > 0 else None,
                pin_memory=torch.cuda.is_available(),
            )
            self._loaders[workers] = (loader, sampler)
        return self._loaders[workers]
