"""GoogLeNet-specific behaviour: Inception concatenation, auxiliary heads, input transform."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.models.classification.googlenet import INCEPTION_CONFIGS, GoogLeNet, InceptionBlock


@pytest.mark.parametrize("config", INCEPTION_CONFIGS, ids=lambda c: c[0])
def test_inception_concatenates_its_four_branches(config: tuple) -> None:
    _, in_channels, ch1x1, _, ch3x3, _, ch5x5, pool_proj = config
    block = InceptionBlock(*config[1:]).eval()
    with torch.no_grad():
        out = block(torch.randn(1, in_channels, 5, 7))
    assert out.shape == (1, ch1x1 + ch3x3 + ch5x5 + pool_proj, 5, 7)
    assert block.out_channels == out.shape[1]


def test_inception_branches_reduce_with_1x1_first() -> None:
    block = InceptionBlock(192, 64, 96, 128, 16, 32, 32)
    assert block.branch3x3[0].conv.kernel_size == (1, 1)
    assert block.branch3x3[0].conv.out_channels == 96
    assert block.branch5x5[0].conv.out_channels == 16
    assert isinstance(block.branch_pool[0], nn.MaxPool2d)
    # Each branch's output is a slice of the concatenation, in branch order.
    block.eval()
    x = torch.randn(1, 192, 4, 4)
    with torch.no_grad():
        out = block(x)
        assert torch.equal(out[:, :64], block.branch1x1(x))
        assert torch.equal(out[:, -32:], block.branch_pool(x))


def test_auxiliary_outputs_only_in_training() -> None:
    model = cnnzoo.create_model("googlenet", num_classes=5)
    x = torch.randn(2, 3, 64, 64)
    outputs = model.train()(x)
    assert isinstance(outputs, tuple) and len(outputs) == 3
    assert all(o.shape == (2, 5) for o in outputs)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 5)


def test_auxiliary_heads_read_inception4a_and_4d() -> None:
    model = GoogLeNet(num_classes=5)
    assert model.aux1.conv.conv.in_channels == 512  # inception4a
    assert model.aux2.conv.conv.in_channels == 528  # inception4d
    assert model.aux1.dropout.p == 0.7


def test_without_auxiliary_heads_training_returns_the_logits() -> None:
    model = cnnzoo.create_model("googlenet", num_classes=5, aux_logits=False).train()
    assert model.aux1 is None and model.aux2 is None
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_features_only_drops_the_auxiliary_heads() -> None:
    extractor = cnnzoo.create_model("googlenet", features_only=True).train()
    assert not any(name.startswith("model.aux") for name, _ in extractor.named_parameters())
    maps = extractor(torch.randn(2, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [16, 8, 4, 2, 1]


def test_head_is_global_average_pooling_and_one_linear_layer() -> None:
    model = GoogLeNet(num_classes=5, aux_logits=False)
    head = [m for name in model.head_modules if (m := getattr(model, name)) is not None]
    assert [type(m) for m in head] == [nn.AdaptiveAvgPool2d, nn.Dropout, nn.Linear]
    assert model.fc.in_features == 1024


def test_transform_input_rescales_imagenet_normalized_input() -> None:
    model = GoogLeNet(num_classes=5, aux_logits=False).eval()
    assert model.transform_input is False
    x = torch.randn(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model((x * std + mean - 0.5) / 0.5)
        model.transform_input = True
        actual = model(x)
    assert torch.allclose(actual, expected, atol=1e-5)


def test_transform_input_needs_three_channels() -> None:
    with pytest.raises(cnnzoo.CnnzooError, match="in_channels=3"):
        GoogLeNet(in_channels=1, transform_input=True)


def test_paper_kernels_give_the_5x5_branch_of_table_1() -> None:
    paper = cnnzoo.create_model("googlenet", paper_kernels=True, aux_logits=False)
    default = cnnzoo.create_model("googlenet", aux_logits=False)
    assert paper.inception3a.branch5x5[1].conv.kernel_size == (5, 5)
    assert default.inception3a.branch5x5[1].conv.kernel_size == (3, 3)
    # Each 5x5 branch adds 16 weights per (reduce, output) channel pair over the 3x3.
    extra = sum(16 * cfg[5] * cfg[6] for cfg in INCEPTION_CONFIGS)
    parameters = [sum(p.numel() for p in m.parameters()) for m in (paper, default)]
    assert parameters[0] - parameters[1] == extra
    paper.eval()
    with torch.no_grad():
        assert paper(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
