"""The default memory layout: NHWC on CPU, NCHW weights where a convolution sees 1x1 maps."""

from __future__ import annotations

import torch
from torch import nn

import cnnzoo
from cnnzoo.device.memory_format import resolve_channels_last, to_channels_last


def test_default_is_nhwc_on_cpu_only() -> None:
    assert resolve_channels_last(None, "cpu") and not resolve_channels_last(None, "cuda")
    assert not resolve_channels_last(False, "cpu") and resolve_channels_last(True, "cuda")


def test_convolutions_on_1x1_maps_keep_nchw_weights() -> None:
    """ResNet-18 at 32x32: layer4's 3x3 convolutions read 1x1 maps, its first one 2x2."""
    model = to_channels_last(cnnzoo.create_model("resnet18", 10), torch.randn(2, 3, 32, 32))
    nchw = {
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
        and not m.weight.is_contiguous(memory_format=torch.channels_last)
    }
    assert nchw == {"layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"}


def test_the_probe_leaves_statistics_and_random_numbers_alone() -> None:
    """MobileNet-v2 in training mode: batch norms would update, dropout would draw."""
    model = cnnzoo.create_model("mobilenet_v2", num_classes=10).train()
    statistics = {name: b.clone() for name, b in model.named_buffers()}
    images = torch.randn(2, 3, 32, 32)
    rng = torch.get_rng_state()
    to_channels_last(model, images)
    assert all(torch.equal(b, statistics[name]) for name, b in model.named_buffers())
    assert torch.equal(torch.get_rng_state(), rng)


def test_every_weight_is_nhwc_where_no_map_is_1x1() -> None:
    model = to_channels_last(cnnzoo.create_model("resnet18", 10), torch.randn(2, 3, 64, 64))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
