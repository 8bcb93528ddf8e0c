"""ImageNet ResNets: the shortcut, the v1.5 bottleneck, dilation for segmentation, attention."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    projection_shortcut,
)
from cnnzoo.models.weights.torchvision import resnet as resnet_from_torchvision


@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
def test_block_adds_its_input_to_the_residual(block: type[nn.Module]) -> None:
    channels = 8 * block.expansion
    unit = block(channels, 8, shortcut=nn.Identity()).eval()
    x = torch.randn(2, channels, 6, 6)
    with torch.no_grad():
        assert torch.equal(unit(x), torch.relu(unit.residual(x) + x))
        plain = block(channels, 8, shortcut=None).eval()
        plain.load_state_dict(unit.state_dict())
        assert torch.equal(plain(x), torch.relu(unit.residual(x)))


def test_projection_shortcut_where_the_shape_changes() -> None:
    model = cnnzoo.create_model("resnet50")
    first = model.layer2[0]
    assert isinstance(first.shortcut, nn.Sequential)
    assert first.shortcut.conv.stride == (2, 2) and first.shortcut.conv.kernel_size == (1, 1)
    assert isinstance(model.layer2[1].shortcut, nn.Identity)
    # torchvision v1.5: the bottleneck strides in its 3x3, not in the first 1x1.
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]


def test_converter_renames_stem_and_shortcut() -> None:
    state = torchvision.models.resnet18().state_dict()
    renamed = resnet_from_torchvision(state)
    assert "stem.conv.weight" in renamed and "stem.bn.running_mean" in renamed
    assert "layer2.0.shortcut.conv.weight" in renamed and "layer2.0.shortcut.bn.bias" in renamed
    assert "layer1.0.conv1.weight" in renamed and "fc.weight" in renamed
    assert not any("downsample" in key for key in renamed)
    cnnzoo.create_model("resnet18").load_state_dict(renamed)  # strict: every key fits


@pytest.mark.parametrize(
    ("output_stride", "strides"),
    [(32, [2, 4, 8, 16, 32]), (16, [2, 4, 8, 16, 16]), (8, [2, 4, 8, 8, 8])],
)
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_output_stride_dilates_the_last_stages(
    name: str, output_stride: int, strides: list[int]
) -> None:
    model = cnnzoo.create_model(name, output_stride=output_stride).eval()
    assert [info.stride for info in model.feature_info] == strides
    with torch.no_grad():
        maps = model.forward_stages(torch.randn(1, 3, 64, 64))
    assert [64 // m.shape[-1] for m in maps] == strides
    reference = cnnzoo.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )


def test_dilation_matches_torchvision_replace_stride_with_dilation() -> None:
    reference = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    ours = cnnzoo.create_model("resnet50", output_stride=8)
    ours.load_state_dict(resnet_from_torchvision(reference.state_dict()))
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert (reference.eval()(x) - ours.eval()(x)).abs().max() <= 1e-4
    assert ours.layer4[1].conv2.dilation == (4, 4) and ours.layer3[1].conv2.dilation == (2, 2)


def test_output_stride_must_be_32_16_or_8() -> None:
    with pytest.raises(CnnzooError, match="output_stride must be 32, 16 or 8"):
        cnnzoo.create_model("resnet18", output_stride=4)


@pytest.mark.parametrize(("output_stride", "sizes"), [(32, [56, 28, 14, 7]), (8, [56, 28, 28, 28])])
def test_attention_factory_gets_channels_and_map_size(output_stride: int, sizes: list) -> None:
    calls = []

    def attention(channels: int, spatial_size: int) -> nn.Module:
        calls.append((channels, spatial_size))
        return nn.Identity()

    ResNet(Bottleneck, (1, 1, 1, 1), output_stride=output_stride, attention=attention)
    assert calls == list(zip([256, 512, 1024, 2048], sizes))


def test_attention_rescales_the_residual_before_the_addition() -> None:
    class Halve(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x / 2

    unit = BasicBlock(8, 8, shortcut=nn.Identity(), attention=lambda channels: Halve()).eval()
    bare = BasicBlock(8, 8, shortcut=nn.Identity()).eval()
    bare.load_state_dict(unit.state_dict())
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        assert torch.allclose(unit(x), torch.relu(bare.residual(x) / 2 + x))


def test_projection_shortcut_matches_shapes() -> None:
    shortcut = projection_shortcut(64, 256, stride=2)
    assert shortcut(torch.randn(1, 64, 9, 9)).shape == (1, 256, 5, 5)


@pytest.mark.parametrize(
    ("block", "residual_layers"),
    [
        (BasicBlock, ["conv1", "bn1", "conv2", "bn2"]),
        (Bottleneck, ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3"]),
    ],
)
def test_block_layers_keep_their_order(block: type, residual_layers: list[str]) -> None:
    # Parameter order is what optimizer checkpoints index by, and creation order sets the
    # initial weights of a seed: F's layers first, then attention, shortcut and ReLU.
    unit = block(8, 8, shortcut=nn.Identity())
    assert [name for name, _ in unit.named_children()] == [
        *residual_layers,
        "attention",
        "shortcut",
        "relu",
    ]
