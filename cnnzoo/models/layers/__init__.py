"""Blocks shared by two or more model families."""

from cnnzoo.models.layers.conv_bn_act import ConvBNAct, make_divisible
from cnnzoo.models.layers.fully_connected import fully_connected_layers
from cnnzoo.models.layers.inverted_residual import InvertedResidual
from cnnzoo.models.layers.squeeze_excite import SqueezeExcite
from cnnzoo.models.layers.stochastic_depth import StochasticDepth

__all__ = [
    "ConvBNAct",
    "InvertedResidual",
    "SqueezeExcite",
    "StochasticDepth",
    "fully_connected_layers",
    "make_divisible",
]
