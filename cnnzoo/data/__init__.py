"""Data sets for both tasks; importing this registers every source."""

from cnnzoo.data import (
    classification,  # noqa: F401  (registers the classification sources)
    segmentation,  # noqa: F401  (registers the segmentation sources)
)
from cnnzoo.data.base import (
    DataRequest,
    DataSplits,
    list_datasets,
    load_data,
    register_dataset,
    source_name,
)

__all__ = [
    "DataRequest",
    "DataSplits",
    "list_datasets",
    "load_data",
    "register_dataset",
    "source_name",
]
