"""VGG: depth from stacks of small 3x3 convolutions.

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, arXiv:1409.1556.

What the design solved: earlier networks used large first-layer kernels
(AlexNet's 11x11) and it was unclear how to go deeper. VGG uses only 3x3
convolutions: two stacked see 5x5 and three see 7x7 (§2.3), with an extra
non-linearity between them and 27C^2 instead of 49C^2 weights, so depth can
grow to 16-19 weight layers in five blocks that each end in 2x2 max-pooling.
The configurations A, B, D and E of Table 1 are data below; ``make_layers``
turns one into the network, as in torchvision.

The blocks' outputs (pool1 ... pool5, strides 2 to 32) are the stages, which
is what FCN fuses (pool3, pool4, pool5). ``output_stride`` 16 or 8 keeps the
last one or two pools at stride 1 and dilates the convolutions after them, as
DeepLab-v1 does (Chen et al. 2014, arXiv:1412.7062, §3.1).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import (
    Classifier,
    FeatureInfo,
    he_fan_out_init,
    outputs_in_turn,
    small_normal_init,
)
from cnnzoo.models.layers import fully_connected_layers
from cnnzoo.models.registry import register_model

PAPER = "Simonyan, Zisserman 2014, Very Deep Convolutional Networks, arXiv:1409.1556"

# Table 1 of the paper: output channels of each 3x3 convolution, "M" for 2x2 max-pooling.
# fmt: off
VGG_CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # 11 weight layers
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # 13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
          512, 512, 512, "M", 512, 512, 512, "M"],  # 16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],  # 19
}
# fmt: on

OUTPUT_STRIDES = (32, 16, 8)


def make_layers(
    config: list[int | str],
    in_channels: int = 3,
    batch_norm: bool = False,
    output_stride: int = 32,
) -> nn.Sequential:
    """The convolutional part of a VGG configuration, one ``blockN`` per max-pool.

    Layers carry the paper's names (``conv3_2``, ``pool4``), with ``bnN_M`` after
    each convolution for the batch-normalised variants. Once the running
    stride reaches ``output_stride``, a pool keeps DeepLab-v1's 3x3 window at
    stride 1 (padding 1) and every later convolution is dilated by the stride
    removed so far, so its receptive field stays what it was.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise CnnzooError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}")
    blocks: OrderedDict[str, nn.Sequential] = OrderedDict()
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    stride, dilation, block, conv = 1, 1, 1, 1
    for value in config:
        if value == "M":
            if stride < output_stride:
                layers[f"pool{block}"] = nn.MaxPool2d(kernel_size=2, stride=2)
                stride *= 2
            else:
                layers[f"pool{block}"] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
                dilation *= 2
            blocks[f"block{block}"] = nn.Sequential(layers)
            layers, block, conv = OrderedDict(), block + 1, 1
            continue
        channels = int(value)
        name = f"{block}_{conv}"
        layers[f"conv{name}"] = nn.Conv2d(
            in_channels, channels, kernel_size=3, padding=dilation, dilation=dilation
        )
        if batch_norm:
            layers[f"bn{name}"] = nn.BatchNorm2d(channels)
        layers[f"relu{name}"] = nn.ReLU(inplace=True)
        in_channels, conv = channels, conv + 1
    return nn.Sequential(blocks)


def block_channels(config: list[int | str]) -> list[int]:
    """Output channels of each block: the last convolution before each max-pool."""
    return [int(config[i - 1]) for i, value in enumerate(config) if value == "M"]


class VGG(Classifier):
    """A VGG configuration followed by the three fully connected layers fc6-fc8.

    The paper's fc layers expect the 7x7 pool5 map of a 224x224 input; other
    sizes are average-pooled to 7x7 first (as in torchvision), so any input
    from 32x32 on works. Dropout 0.5 follows fc6 and fc7 (§3.1).
    """

    head_modules = ("avgpool", "fc6", "fc7", "fc8")
    min_input_size = 32  # five 2x2 pools leave a 1x1 pool5 map

    def __init__(
        self,
        config: list[int | str],
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        output_stride: int = 32,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features = make_layers(config, in_channels, batch_norm, output_stride)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        # The three fully connected layers of §2.1, sized as in AlexNet.
        self.fc6, self.fc7, self.fc8 = fully_connected_layers(512 * 7 * 7, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.feature_info = [
            FeatureInfo(f"features.{name}", channels, min(2**index, output_stride))
            for index, (name, channels) in enumerate(
                zip(self.features._modules, block_channels(config)), start=1
            )
        ]
        # The paper initialised the deeper nets from net A (§3.1); like torchvision we use
        # He et al.'s initialisation, which trains every depth from scratch.
        he_fan_out_init(self, small_normal_init)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        return outputs_in_turn(self.features, x)

    def forward_features(self, x: Tensor) -> Tensor:
        # Without the list of stages, each block's output is freed as soon as the next has
        # read it: inference reuses that memory instead of holding every stage's map.
        return self.features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        x = self.dropout(F.relu(self.fc6_of_pool5(features), inplace=True))
        x = self.dropout(F.relu(self.fc7(x), inplace=True))
        return self.fc8(x)

    def fc6_of_pool5(self, features: Tensor) -> Tensor:
        """fc6 applied to the pool5 map average-pooled to 7x7.

        A 1x1 pool5 map (a 32x32 input, as for CIFAR or MNIST) is pooled to 7x7
        by repeating it 49 times, so fc6 would multiply each channel by 49
        weights and add the products. Summing those 49 weights first gives the
        same outputs and the same gradients for 1/49 of fc6's multiply-adds.
        """
        # torch.jit.trace cannot record the stateless call below; a trace takes the
        # general path, the same function.
        if features.shape[-2:] != (1, 1) or torch.jit.is_tracing():
            return self.fc6(torch.flatten(self.avgpool(features), 1))
        area = self.avgpool.output_size**2
        weight = self.fc6.weight.unflatten(1, (features.shape[1], area)).sum(-1)
        parameters = {"weight": weight, "bias": self.fc6.bias}
        return torch.func.functional_call(self.fc6, parameters, (torch.flatten(features, 1),))


@register_model(family="VGG", paper=PAPER, torchvision="vgg11")
def vgg11(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["A"], num_classes, in_channels, False, output_stride)


@register_model(family="VGG", paper=PAPER, torchvision="vgg13")
def vgg13(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["B"], num_classes, in_channels, False, output_stride)


@register_model(family="VGG", paper=PAPER, torchvision="vgg16")
def vgg16(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["D"], num_classes, in_channels, False, output_stride)


@register_model(family="VGG", paper=PAPER, torchvision="vgg19")
def vgg19(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["E"], num_classes, in_channels, False, output_stride)


@register_model(family="VGG", paper=PAPER, torchvision="vgg11_bn")
def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["A"], num_classes, in_channels, True, output_stride)


@register_model(family="VGG", paper=PAPER, torchvision="vgg13_bn")
def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["B"], num_classes, in_channels, True, output_stride)


@register_model(family="VGG", paper=PAPER, torchvision="vgg16_bn")
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["D"], num_classes, in_channels, True, output_stride)


@register_model(family="VGG", paper=PAPER, torchvision="vgg19_bn")
def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> VGG:
    return VGG(VGG_CONFIGS["E"], num_classes, in_channels, True, output_stride)
