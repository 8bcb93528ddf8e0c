"""fc6, fc7 and fc8: the three fully connected layers that end AlexNet and VGG.

Krizhevsky et al. 2012 (AlexNet, §3.5) classify the last pooled map with two
hidden layers of 4096 units and a layer of class scores; Simonyan & Zisserman
2014 (VGG, arXiv:1409.1556, §2.1) kept that head unchanged, so that only the
convolutional part differs between the two families.
"""

from __future__ import annotations

from torch import nn

HIDDEN_UNITS = 4096  # fc6 and fc7 in both papers (AlexNet §3.5, VGG §2.1)


def fully_connected_layers(in_features: int, num_classes: int) -> tuple[nn.Linear, ...]:
    """fc6 (``in_features`` -> 4096), fc7 (4096 -> 4096) and fc8 (4096 -> ``num_classes``).

    Built in that order, so a seeded network starts from the same weights
    whichever family builds them.
    """
    return (
        nn.Linear(in_features, HIDDEN_UNITS),
        nn.Linear(HIDDEN_UNITS, HIDDEN_UNITS),
        nn.Linear(HIDDEN_UNITS, num_classes),
    )
