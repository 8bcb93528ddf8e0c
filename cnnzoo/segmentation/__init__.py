"""Segmentation networks; importing this fills the registry with them."""

from cnnzoo.segmentation import segnet, unet  # noqa: F401
