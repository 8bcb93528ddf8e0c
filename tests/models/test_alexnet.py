"""AlexNet-specific behaviour: LRN placement and constants, the two-GPU grouping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.models.classification.alexnet import AlexNet


def _layer_kinds(block: nn.Sequential) -> list[type]:
    return [type(layer) for layer in block]


def test_lrn_follows_the_relu_of_conv1_and_conv2_only() -> None:
    model = AlexNet()
    # §3.3: normalisation is applied after the ReLU of the first and second layers.
    for block in (model.conv1, model.conv2):
        assert _layer_kinds(block) == [nn.Conv2d, nn.ReLU, nn.LocalResponseNorm]
    for block in (model.conv3, model.conv4, model.conv5):
        assert _layer_kinds(block) == [nn.Conv2d, nn.ReLU]
    norms = [m for m in model.modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(norms) == 2
    for norm in norms:
        # PyTorch divides alpha by size; the paper's alpha is 1e-4 (§3.3).
        assert (norm.size, norm.alpha / norm.size, norm.beta, norm.k) == (5, 1e-4, 0.75, 2.0)


def test_kernels_channels_and_overlapping_pools() -> None:
    model = AlexNet()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.kernel_size[0] for c in convs] == [11, 5, 3, 3, 3]
    assert convs[0].stride == (4, 4)
    for pool in (model.pool1, model.pool2, model.pool5):
        assert (pool.kernel_size, pool.stride) == (3, 2)  # window larger than stride: overlap


def test_paper_input_gives_the_paper_map_sizes() -> None:
    model = AlexNet().eval()
    with torch.no_grad():
        conv1, conv2, conv5, pool5 = model.forward_stages(torch.randn(1, 3, 224, 224))
    # Figure 2: 55x55 after conv1, 27x27 after pool1, 13x13 after pool2, 6x6 after pool5.
    assert [m.shape[-1] for m in (conv1, conv2, conv5, pool5)] == [55, 27, 13, 6]


def test_two_gpu_grouping_splits_conv2_conv4_conv5() -> None:
    model = cnnzoo.create_model("alexnet", groups=2)
    groups = [m.groups for m in model.modules() if isinstance(m, nn.Conv2d)]
    # conv3 connects to all conv2 maps across both GPUs (§3.2).
    assert groups == [1, 2, 1, 2, 2]
    assert model.conv2[0].weight.shape == (256, 48, 5, 5)


def test_dropout_half_after_fc6_and_fc7() -> None:
    model = AlexNet()
    assert model.dropout.p == 0.5
    model.train()
    features = torch.ones(1, 256, 6, 6)
    first, second = model.forward_head(features), model.forward_head(features)
    assert not torch.equal(first, second)
    model.eval()
    assert torch.equal(model.forward_head(features), model.forward_head(features))


@pytest.mark.parametrize("groups", [0, 3, 4])
def test_other_groupings_are_refused(groups: int) -> None:
    with pytest.raises(cnnzoo.CnnzooError, match="groups must be 1"):
        cnnzoo.create_model("alexnet", groups=groups)


def test_no_torchvision_weights() -> None:
    # torchvision's alexnet is the 64-192-384-256-256 variant without LRN.
    assert cnnzoo.get_model_entry("alexnet").torchvision is None
    with pytest.raises(cnnzoo.CnnzooError, match="no torchvision weights"):
        cnnzoo.create_model("alexnet", pretrained="torchvision")


def test_lrn_computes_the_papers_formula() -> None:
    """b_i = a_i / (k + alpha * sum_{j=i-2..i+2} a_j^2)^beta, AlexNet §3.3."""
    import torch

    norm = [m for m in AlexNet().modules() if isinstance(m, nn.LocalResponseNorm)][0]
    a = torch.randn(1, 7, 3, 3)
    squares = torch.nn.functional.pad(a.pow(2), (0, 0, 0, 0, 2, 2))
    window_sum = sum(squares[:, i : i + 7] for i in range(5))
    expected = a / (2.0 + 1e-4 * window_sum).pow(0.75)
    torch.testing.assert_close(norm(a), expected)
