"""EfficientNet's defining properties: compound scaling as data, MBConv with SE and swish,
and stochastic depth that grows with depth and vanishes at test time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.efficientnet import SCALINGS, round_filters, round_repeats
from cnnzoo.models.layers import InvertedResidual, SqueezeExcite, StochasticDepth
from cnnzoo.models.registry import get_model_entry


def _blocks(model: nn.Module) -> list[InvertedResidual]:
    return [m for m in model.modules() if isinstance(m, InvertedResidual)]


def test_compound_scaling_grows_every_dimension_together() -> None:
    variants = [SCALINGS[f"efficientnet_b{i}"] for i in range(8)]
    for smaller, larger in zip(variants, variants[1:]):
        assert larger.width >= smaller.width and larger.depth > smaller.depth
        assert larger.resolution > smaller.resolution
        assert larger.dropout >= smaller.dropout
    for i, scaling in enumerate(variants):
        entry = get_model_entry(f"efficientnet_b{i}")
        assert entry.input_size == (3, scaling.resolution, scaling.resolution)


def test_round_filters_and_repeats() -> None:
    assert round_filters(32, 1.0) == 32
    assert round_filters(32, 1.1) == 32  # 35.2 rounds to the nearest multiple of 8
    assert round_filters(1280, 2.0) == 2560
    assert round_filters(40, 1.4) == 56
    assert round_repeats(3, 1.0) == 3
    assert round_repeats(3, 1.1) == 4  # rounded up: a row never loses blocks
    assert round_repeats(1, 3.1) == 4


def test_b0_follows_table_1_and_b7_is_scaled() -> None:
    b0 = cnnzoo.create_model("efficientnet_b0")
    assert [len(row) for row in b0.blocks] == [1, 2, 2, 3, 3, 4, 1]
    assert [row[0].depthwise.conv.kernel_size[0] for row in b0.blocks] == [3, 3, 5, 3, 5, 5, 3]
    assert [i.channels for i in b0.feature_info] == [16, 24, 40, 112, 1280]
    with torch.device("meta"):
        b7 = cnnzoo.create_model("efficientnet_b7")
    assert [len(row) for row in b7.blocks] == [4, 7, 7, 10, 10, 13, 4]
    assert b7.stem.conv.out_channels == 64
    assert [i.channels for i in b7.feature_info] == [32, 48, 80, 224, 2560]
    # torchvision's B5-B7 keep TensorFlow's batch-norm settings.
    assert (b7.stem.bn.eps, b7.stem.bn.momentum) == (1e-3, 0.01)
    assert (b0.stem.bn.eps, b0.stem.bn.momentum) == (1e-5, 0.1)


def test_mbconv_has_squeeze_excitation_and_swish() -> None:
    blocks = _blocks(cnnzoo.create_model("efficientnet_b0"))
    for block in blocks:
        assert isinstance(block.se, SqueezeExcite)
        assert isinstance(block.depthwise.act, nn.SiLU)
        assert isinstance(block.se.activation, nn.SiLU)
    second = blocks[1]  # MBConv6, 16 -> 24: expanded to 96, squeezed to 16 / 4
    assert second.expand.conv.out_channels == 96
    assert (second.se.fc1.in_channels, second.se.fc1.out_channels) == (96, 4)
    assert not hasattr(second.project, "act")


def test_stochastic_depth_rate_grows_linearly_with_depth() -> None:
    blocks = _blocks(cnnzoo.create_model("efficientnet_b0"))
    rates = [b.drop_path.drop_rate for b in blocks if b.use_residual]
    assert rates == sorted(rates) and rates[0] > 0
    expected = [0.2 * i / len(blocks) for i, b in enumerate(blocks) if b.use_residual]
    assert rates == pytest.approx(expected)
    off = cnnzoo.create_model("efficientnet_b0", stochastic_depth_rate=0.0)
    assert all(b.drop_path.drop_rate == 0 for b in _blocks(off) if b.use_residual)


def test_stochastic_depth_is_identity_in_eval_and_drops_whole_samples_in_training() -> None:
    drop = StochasticDepth(0.5)
    branch = torch.ones(64, 3, 2, 2)
    assert torch.equal(drop.eval()(branch), branch)
    dropped = drop.train()(branch)
    per_sample = dropped.flatten(1)
    # Each sample is dropped entirely (0) or kept and rescaled by 1 / (1 - 0.5).
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert torch.all(per_sample.min(dim=1).values == per_sample.max(dim=1).values)
    with pytest.raises(ValueError, match="drop_rate"):
        StochasticDepth(1.0)


def test_dropped_block_passes_its_input_through() -> None:
    block = InvertedResidual(8, 8, 32, drop_path_rate=0.5).train()
    x = torch.randn(32, 8, 4, 4)
    out = block(x)
    passed = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert any(passed) and not all(passed)


def test_learned_squeeze_option_and_bad_options() -> None:
    model = cnnzoo.create_model("efficientnet_b0", num_classes=3, squeeze="conv").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 48)).shape == (1, 3)
    with pytest.raises(CnnzooError, match="stochastic_depth_rate"):
        cnnzoo.create_model("efficientnet_b0", stochastic_depth_rate=1.0)
    with pytest.raises(CnnzooError, match="squeeze"):
        cnnzoo.create_model("efficientnet_b0", squeeze="max")
