"""Data sets for both tasks; importing this registers every source."""

from cnnzoo.data.base import (
    DataRequest,
    DataSplits,
    list_datasets,
    load_data,
    register_dataset,
)
from cnnzoo.data import classification  # noqa: F401  (registers the classification sources)
from cnnzoo.data import segmentation  # noqa: F401  (registers the segmentation sources)

__all__ = ["DataRequest", "DataSplits", "list_datasets", "load_data", "register_dataset"]
