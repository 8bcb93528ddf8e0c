"""Blocks shared by two or more model families."""

from cnnzoo.layers.squeeze_excite import SqueezeExcite

__all__ = ["SqueezeExcite"]
