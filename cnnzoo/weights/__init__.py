"""Weights from elsewhere: torchvision's state dicts renamed onto our networks, and loading them.

:mod:`cnnzoo.weights.torchvision` holds one key converter per family;
:mod:`cnnzoo.weights.hub` downloads torchvision's ImageNet weights and loads
them through those converters.
"""

from cnnzoo.weights.hub import load_pretrained, models_with_torchvision_weights
from cnnzoo.weights.torchvision import converter_for, torchvision_state_dict

__all__ = [
    "converter_for",
    "load_pretrained",
    "models_with_torchvision_weights",
    "torchvision_state_dict",
]
