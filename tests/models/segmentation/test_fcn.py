"""FCN: bilinear initialisation of the learnable upsampling, the reference implementation's
alignment on VGG-16, and torchvision's FCN after a state-dict transfer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

import cnnzoo
from cnnzoo.models.segmentation.base import bilinear_resize
from cnnzoo.models.segmentation.fcn import (
    REFERENCE_FINAL_OFFSETS,
    REFERENCE_SKIP_OFFSETS,
    bilinear_upsampler,
)
from cnnzoo.models.weights.torchvision import fcn as from_torchvision


@pytest.mark.parametrize("factor", [2, 8, 16, 32])
def test_upsampling_starts_as_bilinear_interpolation(factor: int) -> None:
    scores = torch.randn(1, 3, 6, 5)
    expected = F.interpolate(scores, scale_factor=factor, mode="bilinear", align_corners=False)
    upsample = bilinear_upsampler(3, factor, padded=True)
    assert upsample.weight.requires_grad  # learnable, as in the paper
    with torch.no_grad():
        padded = upsample(scores)
        # Unpadded (the reference implementation) the same map sits factor / 2 pixels in.
        unpadded = bilinear_upsampler(3, factor, padded=False)(scores)[
            ..., factor // 2 : factor // 2 + 6 * factor, factor // 2 : factor // 2 + 5 * factor
        ]
    # Away from the border, where interpolation replicates the edge and the convolution sees zeros.
    inner = (..., slice(factor, -factor), slice(factor, -factor))
    assert padded.shape == expected.shape
    torch.testing.assert_close(padded[inner], expected[inner])
    torch.testing.assert_close(unpadded[inner], expected[inner])


def test_the_networks_upsampling_layers_start_bilinear() -> None:
    model = cnnzoo.create_model("fcn8s", 4, backbone="resnet18")
    layers = [*model.fuse_upsamples, model.final_upsample]
    assert [layer.stride[0] for layer in layers] == [2, 2, 8]
    scores = torch.randn(1, 4, 8, 8)
    for layer in layers:
        factor = layer.stride[0]
        with torch.no_grad():
            actual = layer(scores)[..., factor:-factor, factor:-factor]
        expected = F.interpolate(scores, scale_factor=factor, mode="bilinear")
        torch.testing.assert_close(actual, expected[..., factor:-factor, factor:-factor])


def _coordinate_map(layers: list[tuple[str, int]]) -> tuple[float, float]:
    """(offset, stride) such that output pixel j is centred on input pixel offset + stride * j.

    Layers: ("pad", p) pads the input, ("conv", k) an unpadded k x k convolution,
    ("pool", 2) a 2x2 max-pool, ("up", f) an unpadded 2f x 2f transposed convolution.
    """
    offset, stride = 0.0, 1.0
    for kind, size in layers:
        if kind == "pad":
            offset -= size * stride
        elif kind == "conv":
            offset += (size - 1) / 2 * stride
        elif kind == "pool":
            offset, stride = offset + stride / 2, stride * 2
        elif kind == "up":
            stride /= size
            offset -= (size - 0.5) * stride
    return offset, stride


def test_reference_crop_offsets_follow_from_the_layer_geometry() -> None:
    """The offsets 5, 9, 19, 27, 31 are where the fused maps line up with the input."""
    # conv1_1 pads 100; every other 3x3 convolution pads 1 and keeps the coordinates.
    pool3 = [("pad", 100), ("conv", 3), ("pool", 2), ("pool", 2), ("pool", 2)]
    pool4, pool5 = [*pool3, ("pool", 2)], [*pool3, ("pool", 2), ("pool", 2)]
    fc7 = [*pool5, ("conv", 7)]
    up_fc7 = _coordinate_map([*fc7, ("up", 2)])
    up_fused4 = _coordinate_map([*fc7, ("up", 2), ("up", 2)])
    assert (up_fc7[0] - _coordinate_map(pool4)[0]) / 16 == REFERENCE_SKIP_OFFSETS[0]
    assert (up_fused4[0] - _coordinate_map(pool3)[0]) / 8 == REFERENCE_SKIP_OFFSETS[1]
    assert -_coordinate_map([*fc7, ("up", 32)])[0] == REFERENCE_FINAL_OFFSETS[32]
    assert -_coordinate_map([*fc7, ("up", 2), ("up", 16)])[0] == REFERENCE_FINAL_OFFSETS[16]
    up_fused3 = [*fc7, ("up", 2), ("up", 2), ("up", 8)]
    assert -_coordinate_map(up_fused3)[0] == REFERENCE_FINAL_OFFSETS[8]


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
def test_vgg_fcn_crops_fit_every_size(name: str) -> None:
    """With the 100-pixel padding every crop stays inside its map (shapes only, on meta)."""
    with torch.device("meta"):
        model = cnnzoo.create_model(name, num_classes=21)
        assert model.fully_connected[0].kernel_size == (7, 7)  # fc6 as a 7x7 convolution
        for side in range(32, 32 * 12, 32):
            assert model.segment(torch.empty(1, 3, side, 64)).shape[-2:] == (side, 64)
        for height in range(1, 70, 3):
            size = (height, 2 * height + 5)
            assert model(torch.empty(1, 3, *size)).shape[-2:] == size


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
def test_vgg_fcn_forward_and_backward(name: str) -> None:
    model = cnnzoo.create_model(name, num_classes=3, in_channels=1).train()
    output = model(torch.randn(2, 1, 37, 45))
    assert output.shape == (2, 3, 37, 45)
    output.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_dilated_fcn_equals_torchvision_fcn_resnet50() -> None:
    reference = torchvision.models.segmentation.fcn_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    ).eval()
    ours = cnnzoo.create_model("fcn_dilated", num_classes=21, aux_head=True).eval()
    ours.load_state_dict(from_torchvision(reference.state_dict()))
    x = torch.randn(1, 3, 64, 72)
    with torch.no_grad():
        expected = reference(x)
        assert (expected["out"] - ours(x)).abs().max() <= 1e-4
        # Ours returns the auxiliary scores in training mode only; compare the head itself.
        aux = bilinear_resize(ours.aux(ours.encoder(x)[-2]), x.shape[-2:])
    assert (expected["aux"] - aux).abs().max() <= 1e-4
