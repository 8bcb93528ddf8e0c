"""``voc``: PASCAL VOC 2012 segmentation (Everingham et al. 2010), through torchvision."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from cnnzoo.data.base import DataRequest, DataSplits, register_dataset
from cnnzoo.data.segmentation_splits import (
    GRAY_OR_COLOR,
    FileSegmentation,
    identity_mask,
    set_channels,
    transforms_for,
)
from cnnzoo.data.segmentation_transforms import SegmentationTransform
from cnnzoo.errors import CnnzooError

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
VOC_VOID = 255  # object borders and difficult regions (Everingham et al. 2010)
VOC_MAX_SIZE = (500, 500)  # every VOC image fits in 500x500: evaluation pads to it


@register_dataset("voc", task="segmentation", channels=GRAY_OR_COLOR)
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
        return FileSegmentation(pairs, channels, identity_mask, transform)

    return DataSplits(
        "segmentation",
        make(train, train_transform),
        make(val, eval_transform),
        None,
        VOC_CLASSES,
        VOC_VOID,
    )
