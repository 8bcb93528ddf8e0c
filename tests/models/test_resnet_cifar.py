"""CIFAR ResNets and plain nets: 6n+2 layers, parameter-free option-A shortcuts, no shortcut
at all in the plain baselines."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.resnet import BasicBlock
from cnnzoo.models.classification.resnet_cifar import CifarResNet, ZeroPadShortcut


def _blocks(model: nn.Module) -> list[BasicBlock]:
    return [m for m in model.modules() if isinstance(m, BasicBlock)]


def test_option_a_shortcut_subsamples_and_pads_with_zeros() -> None:
    shortcut = ZeroPadShortcut(out_channels=32, stride=2)
    x = torch.randn(2, 16, 7, 7)
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0
    assert list(shortcut.parameters()) == []


@pytest.mark.parametrize(("depth", "blocks"), [(20, 3), (56, 9), (110, 18)])
def test_depth_is_6n_plus_2_weighted_layers(depth: int, blocks: int) -> None:
    model = cnnzoo.create_model(f"resnet{depth}", num_classes=10)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == depth
    assert [len(model.stage1), len(model.stage2), len(model.stage3)] == [blocks] * 3
    # Option A everywhere: no shortcut carries a parameter.
    assert all(isinstance(b.shortcut, (nn.Identity, ZeroPadShortcut)) for b in _blocks(model))
    assert [type(b.shortcut) for b in _blocks(model)].count(ZeroPadShortcut) == 2


def test_stage_maps_have_the_papers_sizes_and_filters() -> None:
    model = cnnzoo.create_model("resnet20", num_classes=10).eval()
    with torch.no_grad():
        maps = model.forward_stages(torch.randn(1, 3, 32, 32))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (16, 32, 32),
        (16, 32, 32),
        (32, 16, 16),
        (64, 8, 8),
    ]


@pytest.mark.parametrize("depth", [20, 56])
def test_plain_net_is_the_resnet_without_shortcuts(depth: int) -> None:
    residual = cnnzoo.create_model(f"resnet{depth}", num_classes=10).eval()
    plain = cnnzoo.create_model(f"plain{depth}", num_classes=10).eval()
    assert all(block.shortcut is None for block in _blocks(plain))
    # Option A shortcuts have no parameters, so the two nets share every weight.
    plain.load_state_dict(residual.state_dict())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(plain(x), residual(x))
        block = plain.stage2[1]
        features = torch.randn(1, 32, 8, 8)
        assert torch.equal(block(features), torch.relu(block.residual(features)))


def test_depth_must_be_6n_plus_2() -> None:
    with pytest.raises(CnnzooError, match="6n\\+2"):
        CifarResNet(21)


def test_odd_input_sizes_keep_shortcut_and_residual_aligned() -> None:
    model = cnnzoo.create_model("resnet20", num_classes=10).eval()
    with torch.no_grad():
        maps = model.forward_stages(torch.randn(1, 3, 13, 13))
    assert [m.shape[-1] for m in maps] == [13, 13, 7, 4]
