"""Weights from elsewhere: torchvision's state dicts renamed onto our networks, and loading them.

:mod:`cnnzoo.models.weights.torchvision` holds one key converter per family and the
conversions the segmentation papers made from a classifier (FCN's fc6/fc7 as
convolutions, DeepLab-v1's decimated fc6, SegNet's VGG-16 encoder);
:mod:`cnnzoo.models.weights.hub` finds torchvision's weight files in the torch hub
cache and loads them through those converters;
:mod:`cnnzoo.models.weights.shipped` loads cnnzoo's own trained weights that ship in
the package (``pretrained="cifar10"``).
"""

from cnnzoo.models.weights.hub import (
    PRETRAINED_SOURCES,
    PretrainedReport,
    load_pretrained,
    models_with_torchvision_weights,
    pretrained_options,
    pretrained_preprocessing,
    read_weights,
    weight_files,
    weights_file_name,
    weights_folder,
)
from cnnzoo.models.weights.shipped import (
    SHIPPED_SOURCES,
    models_with_shipped_weights,
    shipped_num_classes,
    write_shipped,
)
from cnnzoo.models.weights.torchvision import converter_for, torchvision_state_dict

__all__ = [
    "PRETRAINED_SOURCES",
    "PretrainedReport",
    "SHIPPED_SOURCES",
    "converter_for",
    "load_pretrained",
    "models_with_shipped_weights",
    "models_with_torchvision_weights",
    "pretrained_options",
    "pretrained_preprocessing",
    "read_weights",
    "shipped_num_classes",
    "torchvision_state_dict",
    "weight_files",
    "weights_file_name",
    "weights_folder",
    "write_shipped",
]
