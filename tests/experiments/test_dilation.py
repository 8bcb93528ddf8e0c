"""Removing dilation: the same weights and cost, a smaller field."""

from __future__ import annotations

import torch
from torch import nn

from cnnzoo.analysis.receptive_field import receptive_fields
from cnnzoo.experiments.dilation import ReducedDeepLabV1, without_dilation
from cnnzoo.measure.flops import count_flops


def test_without_dilation_keeps_weights_and_flops_and_shrinks_the_field() -> None:
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=2, dilation=2))
    plain = without_dilation(stack)
    assert stack[1].dilation == (2, 2)  # the original is left as it was
    assert plain[1].dilation == (1, 1) and plain[1].padding == (1, 1)
    for original, copy in zip(stack.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(original, copy)
    shape = (2, 16, 16)
    assert count_flops(plain, shape).total == count_flops(stack, shape).total
    assert receptive_fields(stack, shape)["1"].size == (7, 7)
    assert receptive_fields(plain, shape)["1"].size == (5, 5)
    x = torch.randn(1, *shape)
    assert plain(x).shape == stack(x).shape


def test_reduced_deeplab_keeps_the_input_size_at_both_strides() -> None:
    for output_stride in (8, 32):
        model = ReducedDeepLabV1(output_stride, num_classes=4, in_channels=3)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4, 32, 32)
