"""Segmentation data sources: synthetic shapes, image/mask folders, CamVid, VOC and ISBI 2012.

``folder:IMAGES,MASKS`` (also ``seg-folder:IMAGES,MASKS``) is the image/mask
folder pair; ``folder:PATH`` with one folder is the class-per-folder tree of
classification.

Every source returns :class:`~cnnzoo.data.base.DataSplits` whose items are
``(image, mask)``: a float (C, H, W) image in [0, 1] with ``in_channels``
channels and an int64 (H, W) mask of class indices, where ``ignore_index``
(if the set has one) marks void pixels that no loss or metric counts.

``DataRequest.image_size`` is the (H, W) of the random training crops
(None: the data's own size, so that an epoch costs what its pixels cost);
validation and test images stay whole, since the networks are fully
convolutional. ``DataRequest.in_channels`` None keeps the data's own
channels: those of the set's first image. Mistakes in a user's files (a mask that does not match
its image's size, a label beyond the classes, an image without a mask) are
reported with the file's name before any training starts; so is a file that
cannot be decoded, whose pair ``--skip-bad-images`` leaves out instead. An image/mask
folder holds out a seeded ``DataRequest.val_fraction`` of its pairs
(``--val-fraction``) for validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    list_images,
    read_image,
    read_image_channels,
    read_image_size,
    read_mask,
)
from cnnzoo.data.protocol import DataSplit
from cnnzoo.data.segmentation_transforms import SegmentationTransform
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress

GREY_OR_COLOUR = (1, 3)  # images are read as grey (L) or colour (RGB)
FOLDER_IGNORE_INDEX = 255  # void label of class-index PNG masks (the VOC convention)

MaskDecoder = Callable[[np.ndarray, Path], np.ndarray]


# ----------------------------------------------------------------------------- data sets


class InMemorySegmentation(DataSplit):
    """Image/mask pairs held as arrays: (H, W, C) uint8 images, (H, W) label masks.

    ``repeats`` lists every image that many times, so that an epoch of random
    crops covers about as many pixels as the images hold.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        transform: SegmentationTransform,
        repeats: int = 1,
    ) -> None:
        self.images, self.masks, self.transform = images, masks, transform
        self.repeats = repeats

    def __len__(self) -> int:
        return len(self.images) * self.repeats

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        index %= len(self.images)
        return self.transform(self.images[index], self.masks[index])

    def iter_masks(self) -> Iterator[Tensor]:
        """The untransformed masks, e.g. for median frequency class weights."""
        return (torch.from_numpy(np.asarray(m, dtype=np.int64)) for m in self.masks)


class FileSegmentation(DataSplit):
    """Image/mask file pairs, read when an item is asked for."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        in_channels: int,
        decode_mask: MaskDecoder,
        transform: SegmentationTransform,
    ) -> None:
        self.pairs, self.in_channels = list(pairs), in_channels
        self.decode_mask, self.transform = decode_mask, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path, self.in_channels)
        return self.transform(image, self.decode_mask(read_mask(mask_path), mask_path))

    def iter_masks(self) -> Iterator[Tensor]:
        for _, mask_path in self.pairs:
            mask = self.decode_mask(read_mask(mask_path), mask_path)
            yield torch.from_numpy(mask.astype(np.int64))


def transforms_for(
    request: DataRequest, ignore_index: int | None, size: tuple[int, int], uniform: bool = True
) -> tuple[SegmentationTransform, SegmentationTransform]:
    """Training transform (scale, crop, flips) and evaluation transform (whole image).

    ``size`` is the images' size, or the largest size where they differ
    (``uniform`` False). Training crops ``request.image_size``, else ``size``,
    so that every scaled sample batches; evaluation pads images of different
    sizes to ``size`` with the void label.
    """
    crop = request.image_size or size
    train = SegmentationTransform(request.augment, crop, ignore_index)
    return train, SegmentationTransform("none", None, ignore_index, None if uniform else size)


def set_channels(request: DataRequest, first_image: Path) -> int:
    """The requested channels, else the set's own: those of its first image."""
    return request.in_channels or read_image_channels(first_image)


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
    height, width = read_image_size(image_path)
    if mask.shape[:2] != (height, width):
        raise CnnzooError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} "
            f"is {width}x{height} (width x height); masks must match their images pixel for pixel"
        )


# ----------------------------------------------------------------------------- shapes

SHAPE_CLASSES = ["background", "circle", "square", "triangle"]
SHAPES_SPLIT_SIZES = {"train": 1000, "val": 200, "test": 200}
SHAPES_DEFAULT_SIZE = 64


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


@register_dataset("shapes", task="segmentation", channels=GREY_OR_COLOUR)
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


# ----------------------------------------------------------------------------- folder


def _image_files(folder: Path) -> dict[str, Path]:
    """The images of ``folder`` by file name without suffix, which pairs images with masks."""
    return {path.stem: path for path in list_images(folder)}


@register_dataset("seg-folder", task="segmentation", channels=GREY_OR_COLOUR)
def load_folder(request: DataRequest) -> DataSplits:
    """``folder:IMAGES,MASKS`` (or ``seg-folder:``): images and same-named mask PNGs.

    Masks hold class indices (255 void), or 0/255 read as binary; MASKS/classes.txt
    optionally names the classes, one per line.
    """
    image_dir, mask_dir = _folder_pair_dirs(request.argument or "")
    bad_images = BadImageLog(request.skip_bad_images)
    pairs, values_of, sizes = scan_masks(
        _matched_pairs(image_dir, mask_dir), "checking masks", bad_images
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
        FileSegmentation(val_pairs, channels, decode, eval_transform),
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


def _matched_pairs(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs matched by file name, or the first few names without a partner."""
    images, masks = _image_files(image_dir), _image_files(mask_dir)
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


def _hold_out(
    pairs: list[tuple[Path, Path]], fraction: float, seed: int
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(training, validation) pairs: a seeded ``fraction`` of them (at least one) validates."""
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


# ----------------------------------------------------------------------------- CamVid

# SegNet's CamVid (Brostow et al. 2008, as in the SegNet tutorial): 11 classes, 11 = void.
CAMVID_CLASSES = [
    "sky", "building", "pole", "road", "pavement", "tree",
    "sign_symbol", "fence", "car", "pedestrian", "bicyclist",
]  # fmt: skip
CAMVID_VOID = 11
CAMVID_SPLITS = {"train": "train", "val": "val", "test": "test"}


def _camvid_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """The split's pairs from ROOT/SPLIT.txt, else by name from ROOT/SPLIT and ROOT/SPLITannot.

    The list files of the SegNet tutorial hold absolute paths from its
    author's machine (``/SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png``),
    so only the last two parts of each path are kept, relative to ``root``.
    """
    listing = root / f"{split}.txt"
    image_dir, mask_dir = root / split, root / f"{split}annot"
    if listing.is_file():
        pairs = []
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise CnnzooError(
                    f"{listing} line {number}: expected 'IMAGE MASK', got {line.strip()!r}"
                )
            image, mask = (root / Path(*Path(f).parts[-2:]) for f in fields)
            for path in (image, mask):
                if not path.is_file():
                    raise CnnzooError(f"{listing} line {number} names {path}, which does not exist")
            pairs.append((image, mask))
        return pairs
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise CnnzooError(
                f"{root} is not a CamVid folder: {folder} is missing (expected train/ "
                "trainannot/ val/ valannot/ test/ testannot/ and the list files)"
            )
    images, masks = _image_files(image_dir), _image_files(mask_dir)
    missing = sorted(set(images) ^ set(masks))
    if missing:
        raise CnnzooError(f"{missing[0]} is in only one of {image_dir} and {mask_dir}")
    return [(images[name], masks[name]) for name in sorted(images)]


def _camvid_root(request: DataRequest) -> Path:
    if request.argument:
        return Path(request.argument).expanduser()
    if request.data_dir is None:
        raise CnnzooError("give the CamVid folder as camvid:PATH or with --data-dir")
    candidates = [request.data_dir / "CamVid", request.data_dir / "camvid", request.data_dir]
    return next((c for c in candidates if (c / "train").is_dir()), candidates[-1])


@register_dataset("camvid", task="segmentation", channels=GREY_OR_COLOUR)
def load_camvid(request: DataRequest) -> DataSplits:
    """``camvid:PATH``: CamVid in SegNet's layout, 11 classes, label 11 void.

    train/ trainannot/ val/ valannot/ test/ testannot/ and the list files.
    """
    root = _camvid_root(request)
    if not root.is_dir():
        raise CnnzooError(f"CamVid folder {root} does not exist")
    splits = {split: _camvid_pairs(root, split) for split in CAMVID_SPLITS}
    bad_images = BadImageLog(request.skip_bad_images)
    every_pair, values_of, sizes = scan_masks(
        [pair for pairs in splits.values() for pair in pairs], "checking CamVid masks", bad_images
    )
    readable = set(every_pair)
    for split, pairs in splits.items():
        splits[split] = [pair for pair in pairs if pair in readable]
        if not splits[split]:
            emptied = " once its unreadable files are left out" if pairs else ""
            raise CnnzooError(f"CamVid split {split!r} in {root} is empty{emptied}")
    for mask_path, found in values_of.items():
        check_values(found, mask_path, len(CAMVID_CLASSES), CAMVID_VOID)
    largest = (max(s[0] for s in sizes), max(s[1] for s in sizes))
    train_transform, eval_transform = transforms_for(
        request, CAMVID_VOID, largest, uniform=len(sizes) == 1
    )

    channels = set_channels(request, every_pair[0][0])

    def make(split: str, transform: SegmentationTransform) -> FileSegmentation:
        return FileSegmentation(splits[split], channels, _identity_mask, transform)

    return DataSplits(
        "segmentation",
        make("train", train_transform),
        make("val", eval_transform),
        make("test", eval_transform),
        CAMVID_CLASSES,
        CAMVID_VOID,
        skipped_images=bad_images.skipped,
    )


def _identity_mask(mask: np.ndarray, path: Path) -> np.ndarray:
    return mask


# ----------------------------------------------------------------------------- VOC

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
VOC_VOID = 255  # object borders and difficult regions (Everingham et al. 2010)
VOC_MAX_SIZE = (500, 500)  # every VOC image fits in 500x500: evaluation pads to it


@register_dataset("voc", task="segmentation", channels=GREY_OR_COLOUR)
def load_voc(request: DataRequest) -> DataSplits:
    """PASCAL VOC 2012 segmentation (torchvision), 21 classes, 255 void.

    ``--download`` fetches it (2 GB).
    """
    from torchvision.datasets import VOCSegmentation

    root = Path(request.argument or request.data_dir or "data").expanduser()
    voc_dir = root / "VOCdevkit" / "VOC2012"
    if not request.download and not voc_dir.is_dir():
        raise CnnzooError(
            f"VOC 2012 not found at {voc_dir}; pass --download to fetch it (2 GB), or "
            "--data-dir pointing at the folder that holds VOCdevkit/"
        )
    train_transform, eval_transform = transforms_for(request, VOC_VOID, VOC_MAX_SIZE, uniform=False)
    try:
        train, val = (
            VOCSegmentation(str(root), year="2012", image_set=split, download=request.download)
            for split in ("train", "val")
        )
    except (RuntimeError, OSError, ValueError) as error:
        raise CnnzooError(f"cannot read VOC 2012 under {root}: {error}") from None

    channels = set_channels(request, Path(train.images[0]))

    def make(voc: Dataset, transform: SegmentationTransform) -> FileSegmentation:
        # torchvision finds the files; they are read like every other image and mask.
        pairs = [(Path(image), Path(mask)) for image, mask in zip(voc.images, voc.masks)]
        return FileSegmentation(pairs, channels, _identity_mask, transform)

    return DataSplits(
        "segmentation",
        make(train, train_transform),
        make(val, eval_transform),
        None,
        VOC_CLASSES,
        VOC_VOID,
    )


# ----------------------------------------------------------------------------- ISBI 2012

ISBI_CLASSES = ["membrane", "cell"]  # mask 0 = membrane (cell border), 255 = cell interior
ISBI_TRAIN_SLICES = 24  # the first 24 slices train, the last 6 validate


def _isbi_root(request: DataRequest) -> Path:
    if request.argument:
        return Path(request.argument).expanduser()
    if request.data_dir is None:
        raise CnnzooError("give the ISBI 2012 folder as isbi2012:PATH or with --data-dir")
    nested = request.data_dir / "isbi2012"
    return nested if (nested / "images").is_dir() else request.data_dir


@register_dataset("isbi2012", task="segmentation", channels=GREY_OR_COLOUR)
def load_isbi2012(request: DataRequest) -> DataSplits:
    """``isbi2012:PATH``: the 30 ISBI 2012 EM slices, 0 membrane and 1 cell.

    images/NN.png and masks/NN.png; the first 24 train (an epoch: as many random
    crops per slice as fit), the last 6 validate.
    """
    root = _isbi_root(request)
    image_dir, mask_dir = root / "images", root / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise CnnzooError(f"{root} is not the ISBI 2012 folder: it needs images/ and masks/")
    images, masks = _image_files(image_dir), _image_files(mask_dir)
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
