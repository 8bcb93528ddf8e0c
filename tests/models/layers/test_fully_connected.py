"""fc6-fc8, the fully connected head shared by AlexNet and VGG."""

from __future__ import annotations

import torch
from torch import nn

import cnnzoo
from cnnzoo.models.layers import fully_connected_layers


def test_fc6_to_fc8_widths() -> None:
    fc6, fc7, fc8 = fully_connected_layers(256 * 6 * 6, num_classes=7)
    assert (fc6.in_features, fc6.out_features) == (9216, 4096)
    assert (fc7.in_features, fc7.out_features) == (4096, 4096)
    assert (fc8.in_features, fc8.out_features) == (4096, 7)


def test_built_in_order_so_seeded_weights_do_not_move() -> None:
    torch.manual_seed(0)
    shared = fully_connected_layers(12, num_classes=3)
    torch.manual_seed(0)
    by_hand = (nn.Linear(12, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 3))
    for ours, reference in zip(shared, by_hand):
        assert torch.equal(ours.weight, reference.weight)
        assert torch.equal(ours.bias, reference.bias)


def test_alexnet_and_vgg_end_in_it() -> None:
    with torch.device("meta"):
        alexnet = cnnzoo.create_model("alexnet", num_classes=5)
        vgg = cnnzoo.create_model("vgg11", num_classes=5)
    assert (alexnet.fc6.in_features, alexnet.fc8.out_features) == (256 * 6 * 6, 5)
    assert (vgg.fc6.in_features, vgg.fc8.out_features) == (512 * 7 * 7, 5)
