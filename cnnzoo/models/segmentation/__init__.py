"""Segmentation networks; importing this fills the registry with them."""

from cnnzoo.models.segmentation import deeplab, fcn, segnet, unet  # noqa: F401
