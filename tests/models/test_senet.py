"""SE-ResNets: where the SE block sits, what it computes, and the two squeeze modes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.resnet import BasicBlock, Bottleneck, ResNet
from cnnzoo.models.classification.senet import se_attention
from cnnzoo.models.layers import SqueezeExcite


def _se_blocks(model: nn.Module) -> list[SqueezeExcite]:
    return [m for m in model.modules() if isinstance(m, SqueezeExcite)]


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_se_resnet50_has_timms_parameter_count() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("se_resnet50")
        plain = cnnzoo.create_model("resnet50")
    # timm's seresnet50: ResNet-50 plus an SE block (reduction 16, biased FCs) per bottleneck.
    assert _parameters(model) == 28_088_024
    assert _parameters(model) - _parameters(plain) == 2_530_992


def test_se_sits_on_the_residual_branch_of_every_block() -> None:
    model = cnnzoo.create_model("se_resnet50")
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16 and len(_se_blocks(model)) == 16
    for block in blocks:
        assert isinstance(block.attention, SqueezeExcite)
        channels = block.bn3.num_features
        assert (block.attention.fc1.in_channels, block.attention.fc1.out_channels) == (
            channels,
            channels // 16,
        )


def test_se_rescales_the_residual_before_the_addition() -> None:
    model = cnnzoo.create_model("se_resnet20", num_classes=10).eval()
    block = model.stage2[1]
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        weights = block.attention.excitation(block.attention.squeeze(branch))
        assert weights.shape == (2, 32, 1, 1)
        assert bool(((weights > 0) & (weights < 1)).all())
        # A channel-wise (element-wise) product, then the shortcut.
        assert torch.allclose(block.residual(x), branch * weights)
        assert torch.allclose(block(x), torch.relu(branch * weights + x))


@pytest.mark.parametrize("size", [32, 20])
def test_conv_squeeze_equals_avg_squeeze_at_its_uniform_init(size: int) -> None:
    avg = cnnzoo.create_model("se_resnet20", num_classes=10).eval()
    conv = cnnzoo.create_model("se_resnet20", num_classes=10, squeeze="conv").eval()
    missing, unexpected = conv.load_state_dict(avg.state_dict(), strict=False)
    assert unexpected == [] and all(key.endswith("squeeze_weight") for key in missing)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(avg(x), conv(x), atol=1e-5)
    conv.stage3[0].attention.squeeze_weight.data[:, :, 0, 0] += 1.0  # learned, no longer a mean
    with torch.no_grad():
        assert not torch.allclose(avg(x), conv(x), atol=1e-5)


def test_conv_squeeze_is_sized_for_each_blocks_map_at_the_nominal_input() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("se_resnet50", squeeze="conv")
        dilated = cnnzoo.create_model("se_resnet50", squeeze="conv", output_stride=8)
    for network, sizes in ((model, [56, 28, 14, 7]), (dilated, [56, 28, 28, 28])):
        for index, size in enumerate(sizes, start=1):
            se = getattr(network, f"layer{index}")[0].attention
            assert se.squeeze_weight.shape == (se.fc1.in_channels, 1, size, size)
    cifar = cnnzoo.create_model("se_resnet56", num_classes=10, squeeze="conv")
    assert [cifar.stage1[0].attention.squeeze_weight.shape[-1]] + [
        getattr(cifar, f"stage{i}")[-1].attention.squeeze_weight.shape[-1] for i in (2, 3)
    ] == [32, 16, 8]


@pytest.mark.parametrize(
    ("reduction", "bottleneck"), [(16, [1, 2, 4]), (4, [4, 8, 16]), (32, [1, 1, 2])]
)
def test_reduction_keeps_at_least_one_unit(reduction: int, bottleneck: list[int]) -> None:
    model = cnnzoo.create_model("se_resnet20", num_classes=10, reduction=reduction)
    widths = [getattr(model, f"stage{i}")[0].attention.fc1.out_channels for i in (1, 2, 3)]
    assert widths == bottleneck


@pytest.mark.parametrize(
    ("options", "message"),
    [({"squeeze": "max"}, "squeeze must be"), ({"reduction": 0}, "reduction must be")],
)
def test_bad_se_options_are_clear_errors(options: dict, message: str) -> None:
    with pytest.raises(CnnzooError, match=message):
        cnnzoo.create_model("se_resnet20", **options)


def test_se_plugs_into_any_resnet() -> None:
    model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes=5, attention=se_attention(8)).eval()
    assert len(_se_blocks(model)) == 8
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)
