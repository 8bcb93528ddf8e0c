"""Segmentation networks; importing this fills the registry with them."""
