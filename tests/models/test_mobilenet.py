"""MobileNet's defining properties: depthwise separable convolutions, width multiplier,
inverted residuals with linear bottlenecks, atrous output stride and pluggable SE."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.mobilenet import V3_LARGE, V3_SMALL, DepthwiseSeparable, V3Config
from cnnzoo.models.layers import InvertedResidual, SqueezeExcite


def _parameters(name: str, **options: object) -> int:
    with torch.device("meta"):
        model = cnnzoo.create_model(name, **options)
    return sum(p.numel() for p in model.parameters())


def _blocks(model: nn.Module) -> list[InvertedResidual]:
    return [m for m in model.modules() if isinstance(m, InvertedResidual)]


def test_depthwise_convolution_has_one_filter_per_channel() -> None:
    layer = DepthwiseSeparable(32, 64, stride=2)
    assert layer.depthwise.conv.groups == 32 == layer.depthwise.conv.out_channels
    assert layer.depthwise.conv.weight.shape == (32, 1, 3, 3)
    assert layer.pointwise.conv.kernel_size == (1, 1)
    assert layer(torch.randn(1, 32, 8, 8)).shape == (1, 64, 4, 4)
    for block in _blocks(cnnzoo.create_model("mobilenet_v2")):
        conv = block.depthwise.conv
        assert conv.groups == conv.in_channels == conv.out_channels


def test_separable_layer_is_cheaper_than_a_full_convolution() -> None:
    # Howard et al. section 3.1: cost ratio 1/N + 1/k^2 of a standard convolution.
    separable = sum(p.numel() for p in DepthwiseSeparable(512, 512, 1).parameters())
    standard = nn.Conv2d(512, 512, 3, bias=False).weight.numel()
    assert separable < standard / 8


@pytest.mark.parametrize(("width", "millions"), [(0.75, 2.6), (0.5, 1.3), (0.25, 0.5)])
def test_width_multiplier_matches_the_papers_table_6(width: float, millions: float) -> None:
    assert abs(_parameters("mobilenet_v1", width_mult=width) / 1e6 - millions) < 0.05


def test_v2_width_multiplier_rounds_to_eight_and_keeps_the_last_layer() -> None:
    model = cnnzoo.create_model("mobilenet_v2", width_mult=0.35)
    assert all(info.channels % 8 == 0 for info in model.feature_info)
    assert model.feature_info[-1].channels == 1280
    assert cnnzoo.create_model("mobilenet_v2", width_mult=1.4).feature_info[-1].channels == 1792


def test_inverted_residual_shortcut_only_for_stride_one_and_equal_channels() -> None:
    assert InvertedResidual(16, 16, 96, stride=1).use_residual
    assert not InvertedResidual(16, 16, 96, stride=2).use_residual
    assert not InvertedResidual(16, 24, 96, stride=1).use_residual
    x = torch.randn(2, 16, 8, 8)
    for block in (InvertedResidual(16, 16, 96), InvertedResidual(16, 24, 96)):
        nn.init.zeros_(block.project.bn.weight)  # silence the residual branch
        out = block.eval()(x)
        expected = x if block.use_residual else torch.zeros_like(out)
        assert torch.equal(out, expected)


def test_bottleneck_is_linear_and_expansion_widens() -> None:
    block = InvertedResidual(24, 32, 144, stride=2)
    assert block.expand.conv.out_channels == 144
    assert not hasattr(block.project, "act")  # no ReLU after the projection
    out = block.eval()(torch.randn(1, 24, 8, 8))
    assert out.shape == (1, 32, 4, 4)
    assert (out < 0).any()
    assert isinstance(InvertedResidual(32, 16, 32).expand, nn.Identity)  # t = 1: no expansion


@pytest.mark.parametrize(
    ("output_stride", "strides"), [(16, [2, 4, 8, 16, 16]), (8, [2, 4, 8, 8, 8])]
)
def test_output_stride_dilates_instead_of_downsampling(output_stride: int, strides: list) -> None:
    model = cnnzoo.create_model("mobilenet_v2", output_stride=output_stride).eval()
    assert [info.stride for info in model.feature_info] == strides
    with torch.no_grad():
        stages = model.forward_stages(torch.randn(1, 3, 64, 64))
    assert [64 // s.shape[-1] for s in stages] == strides
    dilations = {m.dilation[0] for m in model.modules() if isinstance(m, nn.Conv2d)}
    assert dilations == ({1, 2} if output_stride == 16 else {1, 2, 4})
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_squeeze_excitation_plugs_into_every_block() -> None:
    model = cnnzoo.create_model("mobilenet_v2", num_classes=5, se_ratio=0.25)
    blocks = _blocks(model)
    assert len(blocks) == 17 and all(isinstance(b.se, SqueezeExcite) for b in blocks)
    last = blocks[-1]  # 160 -> 320 channels, expanded to 960
    assert (last.se.fc1.in_channels, last.se.fc1.out_channels) == (960, 40)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    plain = cnnzoo.create_model("mobilenet_v2")
    assert not any(isinstance(m, SqueezeExcite) for m in plain.modules())
    learned = cnnzoo.create_model("mobilenet_v2", se_ratio=0.25, squeeze="conv")
    assert learned(torch.randn(1, 3, 48, 40)).shape == (1, 1000)


@pytest.mark.parametrize(
    "options",
    [{"output_stride": 4}, {"width_mult": 0}, {"se_ratio": 2.0}, {"squeeze": "max"}],
)
def test_bad_options_are_clear_errors(options: dict) -> None:
    with pytest.raises(CnnzooError):
        cnnzoo.create_model("mobilenet_v2", **options)


def test_v1_rejects_a_bad_width() -> None:
    with pytest.raises(CnnzooError, match="width_mult"):
        cnnzoo.create_model("mobilenet_v1", width_mult=-1)


@pytest.mark.parametrize(
    ("name", "config"), [("mobilenet_v3_large", V3_LARGE), ("mobilenet_v3_small", V3_SMALL)]
)
def test_v3_blocks_follow_the_searched_tables(name: str, config: V3Config) -> None:
    blocks = _blocks(cnnzoo.create_model(name))
    assert len(blocks) == len(config.blocks)
    for block, spec in zip(blocks, config.blocks):
        assert block.depthwise.conv.kernel_size == (spec.kernel_size,) * 2
        assert block.depthwise.conv.stride == (spec.stride,) * 2
        assert isinstance(block.depthwise.act, nn.Hardswish if spec.hard_swish else nn.ReLU)
        assert isinstance(block.se, SqueezeExcite) == spec.se
        if spec.se:
            assert isinstance(block.se.gate, nn.Hardsigmoid)


def test_v3_small_downsamples_in_its_first_block() -> None:
    model = cnnzoo.create_model("mobilenet_v3_small", width_mult=0.75).eval()
    assert [info.stride for info in model.feature_info] == [2, 4, 8, 16, 32]
    assert model.feature_info[0].name == "stem"
    with torch.no_grad():
        stages = model.forward_stages(torch.randn(1, 3, 64, 64))
    assert [s.shape[1] for s in stages] == [i.channels for i in model.feature_info]


@pytest.mark.parametrize(
    ("small", "imagenet"),
    [("mobilenet_v2_cifar", "mobilenet_v2"), ("efficientnet_b0_cifar", "efficientnet_b0")],
)
def test_small_input_variants_keep_the_weights_and_end_on_a_4x4_map(
    small: str, imagenet: str
) -> None:
    # Only strides change: the same tensors, and a 32x32 image leaves 4x4 (not 1x1) to pool.
    network, reference = cnnzoo.create_model(small, 10), cnnzoo.create_model(imagenet, 10)
    assert [p.shape for p in network.parameters()] == [p.shape for p in reference.parameters()]
    assert network.input_size == (3, 32, 32)
    stages = network.eval().forward_stages(torch.zeros(1, 3, 32, 32))
    assert [stage.shape[-1] for stage in stages] == [32, 16, 8, 4]
    assert [info.stride for info in network.feature_info] == [1, 2, 4, 8]
    assert reference.eval().forward_stages(torch.zeros(1, 3, 32, 32))[-1].shape[-1] == 1
