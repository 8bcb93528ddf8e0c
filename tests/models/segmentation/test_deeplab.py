"""DeepLab: v1's output stride and dilations, ASPP rates, v3+'s low-level features, and
torchvision's DeepLab-v3 after a state-dict transfer."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.segmentation.deeplab import dilated_fc
from cnnzoo.models.weights.torchvision import deeplab_v3 as from_torchvision


def test_v1_largefov_has_output_stride_8() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("deeplab_v1_largefov", num_classes=21)
        features = model.encoder(torch.empty(1, 3, 320, 240))
        scores = model.classifier(features[-1])
    assert model.encoder.feature_info[-1].stride == 8
    assert scores.shape == (1, 21, 40, 30)
    fc6 = model.classifier[0]
    assert (fc6.kernel_size, fc6.dilation, fc6.out_channels) == ((3, 3), (12, 12), 1024)
    # pool4 and pool5 keep the resolution; conv5 is dilated by 2 (v1 section 3.1).
    conv5 = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)][-3:]
    assert all(c.dilation == (2, 2) for c in conv5)


def test_v2_sums_four_atrous_branches() -> None:
    with torch.device("meta"):
        on_resnet = cnnzoo.create_model("deeplab_v2", 21, backbone="resnet18")
        on_vgg = cnnzoo.create_model("deeplab_v2", 21, backbone="vgg16")
    assert [b.dilation[0] for b in on_resnet.aspp.branches] == [6, 12, 18, 24]
    # ASPP-L on VGG: each branch is a LargeFOV classifier (fc6 at its rate, fc7, fc8).
    assert [b[0].dilation[0] for b in on_vgg.aspp.branches] == [6, 12, 18, 24]
    assert on_resnet.encoder.feature_info[-1].stride == 8


@pytest.mark.parametrize(("output_stride", "rates"), [(16, [6, 12, 18]), (8, [12, 24, 36])])
def test_v3_rates_double_at_output_stride_8(output_stride: int, rates: list[int]) -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("deeplab_v3", 21, output_stride=output_stride)
    atrous = [branch.conv.dilation[0] for branch in list(model.aspp.branches)[1:4]]
    assert atrous == rates
    assert model.encoder.feature_info[-1].stride == output_stride
    with pytest.raises(CnnzooError, match="output_stride 8 or 16"):
        cnnzoo.create_model("deeplab_v3", 21, backbone="resnet18", output_stride=32)


def test_v3plus_decodes_with_stride_4_features_of_any_backbone() -> None:
    model = cnnzoo.create_model("deeplab_v3plus", 3, backbone="mobilenet_v2").eval()
    assert model.encoder.feature_info[model.low_level_index].stride == 4
    with torch.no_grad():
        assert model(torch.randn(1, 3, 45, 61)).shape == (1, 3, 45, 61)


def test_v3_equals_torchvision_deeplabv3_resnet50() -> None:
    reference = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, num_classes=21
    ).eval()
    ours = cnnzoo.create_model(
        "deeplab_v3", num_classes=21, backbone="resnet50", output_stride=8
    ).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )
    ours.load_state_dict(from_torchvision(reference.state_dict()))
    x = torch.randn(2, 3, 64, 72)
    with torch.no_grad():
        assert (reference(x)["out"] - ours(x)).abs().max() <= 1e-4


@pytest.mark.parametrize("name", ["deeplab_v1_largefov", "deeplab_v2"])
def test_score_layers_start_small_so_training_does_not_diverge(name: str) -> None:
    """fc8 starts from N(0, 0.01); He's fan_out scaling over 2 outputs would give std 1."""
    model = cnnzoo.create_model(name, num_classes=2, in_channels=1, backbone="resnet18").eval()
    score_layers = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.out_channels == 2]
    assert score_layers and all(layer.weight.std() < 0.02 for layer in score_layers)
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).abs().max() < 5


def test_dilated_fc_narrows_to_the_channels_asked_for() -> None:
    head = dilated_fc(16, rate=12, num_classes=3, channels=8)
    fc6, fc7, fc8 = (layer for layer in head if isinstance(layer, nn.Conv2d))
    assert (fc6.out_channels, fc6.dilation, fc7.out_channels, fc8.out_channels) == (
        8,
        (12, 12),
        8,
        3,
    )
    assert head(torch.randn(1, 16, 5, 5)).shape == (1, 3, 5, 5)
