"""``camvid:PATH``: CamVid in SegNet's layout (Brostow et al. 2008)."""

from __future__ import annotations

from pathlib import Path

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.mask_checks import (
    check_values,
    image_files,
    scan_masks,
)
from cnnzoo.data.segmentation_splits import (
    GRAY_OR_COLOR,
    FileSegmentation,
    identity_mask,
    set_channels,
    transforms_for,
)
from cnnzoo.data.segmentation_transforms import SegmentationTransform
from cnnzoo.errors import CnnzooError

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
    images, masks = image_files(image_dir), image_files(mask_dir)
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


@register_dataset("camvid", task="segmentation", channels=GRAY_OR_COLOR)
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
        return FileSegmentation(splits[split], channels, identity_mask, transform)

    return DataSplits(
        "segmentation",
        make("train", train_transform),
        make("val", eval_transform),
        make("test", eval_transform),
        CAMVID_CLASSES,
        CAMVID_VOID,
        skipped_images=bad_images.skipped,
    )
