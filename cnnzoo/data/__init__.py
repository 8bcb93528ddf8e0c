"""Data sets for both tasks; importing this registers every source."""

from cnnzoo.data import sources  # noqa: F401  (registers every data source)
from cnnzoo.data.base import (
    DataRequest,
    DataSplits,
    list_datasets,
    load_data,
    plain_request,
    register_dataset,
    source_name,
)
from cnnzoo.data.images import IMAGE_EXTENSIONS, list_images, read_image
from cnnzoo.data.protocol import ClassificationSplit, SegmentationSplit, Split, as_split

__all__ = [
    "IMAGE_EXTENSIONS",
    "ClassificationSplit",
    "DataRequest",
    "DataSplits",
    "SegmentationSplit",
    "Split",
    "as_split",
    "list_datasets",
    "list_images",
    "load_data",
    "plain_request",
    "read_image",
    "register_dataset",
    "source_name",
]
