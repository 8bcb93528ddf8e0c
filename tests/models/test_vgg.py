"""VGG-specific behaviour: the configurations, layer names, output stride and dilation."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.models.classification.vgg import VGG_CONFIGS, block_channels, make_layers
from cnnzoo.models.weights.torchvision import vgg as vgg_from_torchvision


@pytest.mark.parametrize(
    ("name", "weight_layers"), [("vgg11", 11), ("vgg13", 13), ("vgg16", 16), ("vgg19", 19)]
)
def test_configurations_have_the_papers_depth(name: str, weight_layers: int) -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == weight_layers
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)


def test_layers_carry_the_papers_names() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("vgg16_bn")
    names = dict(model.named_modules())
    assert isinstance(names["features.block3.conv3_3"], nn.Conv2d)
    assert isinstance(names["features.block3.bn3_3"], nn.BatchNorm2d)
    assert isinstance(names["features.block4.pool4"], nn.MaxPool2d)
    assert [info.name for info in model.feature_info][-1] == "features.block5"


def test_block_channels_for_encoders() -> None:
    assert block_channels(VGG_CONFIGS["D"]) == [64, 128, 256, 512, 512]
    layers = make_layers(VGG_CONFIGS["A"], in_channels=1, batch_norm=True)
    assert list(layers._modules) == [f"block{i}" for i in range(1, 6)]
    assert layers.block1.conv1_1.in_channels == 1


def _pools_and_dilations(model: nn.Module) -> tuple[list[int], list[int]]:
    pools = [m.stride for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    dilations = [m.dilation[0] for m in model.modules() if isinstance(m, nn.Conv2d)]
    return pools, dilations


def test_output_stride_16_keeps_pool5_at_stride_1() -> None:
    model = cnnzoo.create_model("vgg11", num_classes=3, output_stride=16).eval()
    pools, dilations = _pools_and_dilations(model)
    assert pools == [2, 2, 2, 2, 1]
    assert set(dilations) == {1}  # no convolution follows pool5
    assert [info.stride for info in model.feature_info] == [2, 4, 8, 16, 16]
    with torch.no_grad():
        maps = model.forward_stages(torch.randn(1, 3, 64, 64))
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4, 4]


def test_output_stride_8_dilates_conv5_like_deeplab() -> None:
    deeplab = cnnzoo.create_model("vgg11", num_classes=3, output_stride=8).eval()
    pools, dilations = _pools_and_dilations(deeplab)
    assert pools == [2, 2, 2, 1, 1]
    assert dilations == [1] * 6 + [2] * 2  # conv5_1, conv5_2
    pool4 = deeplab.features.block4.pool4
    assert (pool4.kernel_size, pool4.stride, pool4.padding) == (3, 1, 1)
    assert [info.stride for info in deeplab.feature_info] == [2, 4, 8, 8, 8]
    plain = cnnzoo.create_model("vgg11", num_classes=3).eval()
    deeplab.load_state_dict(plain.state_dict())  # same weights, only strides differ
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        dilated, reference = deeplab.forward_stages(x), plain.forward_stages(x)
    assert [m.shape[-1] for m in dilated] == [32, 16, 8, 8, 8]
    for before_change, same in zip(dilated[:3], reference[:3]):
        assert torch.equal(before_change, same)
    assert deeplab(x).shape == (1, 3)


@pytest.mark.parametrize("output_stride", [4, 24, 64])
def test_other_output_strides_are_refused(output_stride: int) -> None:
    with pytest.raises(cnnzoo.CnnzooError, match="output_stride must be one of"):
        cnnzoo.create_model("vgg11", output_stride=output_stride)


def test_converter_reads_the_configuration_from_the_layer_numbers() -> None:
    for name in ("vgg11", "vgg11_bn", "vgg19"):
        with torch.device("meta"):
            state = torchvision.models.get_model(name, weights=None).state_dict()
            ours = cnnzoo.create_model(name).state_dict()
        assert vgg_from_torchvision(state).keys() == ours.keys()
    with pytest.raises(cnnzoo.CnnzooError, match="not a torchvision VGG state dict"):
        vgg_from_torchvision({**state, "extra.weight": state["features.0.weight"]})
