"""DenseNet: every layer sees the feature maps of all layers before it in its block.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017, arXiv:1608.06993.

What the design solved: in a deep plain network information and gradients must
pass through every layer, and even ResNets relearn features that earlier layers
already computed. DenseNet connects each layer to *all* earlier layers of its
block by concatenation: layer l receives [x_0, x_1, ..., x_{l-1}] and adds only
k new maps (the growth rate k). Features are reused instead of relearned, every
layer has a short path to the loss, and the network needs far fewer
parameters than a ResNet of similar accuracy. DenseNet-BC keeps the growing
input cheap with a 1x1 *bottleneck* (4k maps) before each 3x3 convolution and
*compresses* the maps between blocks (theta = 0.5) in the transition layers.

Variants: ``densenet121/169/201/161`` (ImageNet, Table 1, the same networks as
torchvision's) and the CIFAR networks of Table 2, ``densenet40_k12`` (plain
DenseNet, L=40, k=12) and ``densenet_bc100_k12`` (DenseNet-BC, L=100, k=12).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import Classifier, FeatureInfo
from cnnzoo.models.registry import register_model

PAPER = "Huang et al. 2016, Densely Connected Convolutional Networks, arXiv:1608.06993"


@dataclass(frozen=True)
class DenseNetConfig:
    """One DenseNet variant, as the paper's Table 1 (ImageNet) or section 4.2 (CIFAR) gives it."""

    growth_rate: int  # k: feature maps each layer adds to its block
    block_layers: tuple[int, ...]  # layers per dense block
    stem_channels: int  # maps of the first convolution (2k for the BC networks)
    bottleneck: bool  # B: a 1x1 convolution to 4k maps before each 3x3 convolution
    compression: float  # C: theta, the fraction of maps a transition keeps (1.0 = none)
    imagenet_stem: bool  # 7x7/2 conv + 3x3/2 max-pool (ImageNet) or one 3x3 conv (32x32 CIFAR)


def bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """The composite function H of the paper: BN -> ReLU -> convolution (pre-activation order)."""
    return nn.Sequential(
        OrderedDict(
            norm=nn.BatchNorm2d(in_channels),
            relu=nn.ReLU(inplace=True),
            conv=nn.Conv2d(
                in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
            ),
        )
    )


class DenseLayer(nn.Module):
    """One dense layer: concatenation of all earlier maps -> [bottleneck] -> 3x3 -> k new maps.

    With ``bottleneck`` (DenseNet-B) a 1x1 convolution first reduces the
    ever-growing input to 4k maps (bn_size = 4, section 3), so the 3x3
    convolution's cost no longer grows with depth.
    """

    def __init__(
        self, in_channels: int, growth_rate: int, bottleneck: bool, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        width = 4 * growth_rate if bottleneck else in_channels
        self.bottleneck = bn_relu_conv(in_channels, width, 1) if bottleneck else nn.Identity()
        self.conv = bn_relu_conv(width, growth_rate, 3)
        # The paper adds dropout 0.2 after each convolution on CIFAR without augmentation.
        self.drop_rate = drop_rate

    def forward(self, earlier_maps: list[Tensor]) -> Tensor:
        new_maps = self.conv(self.bottleneck(torch.cat(earlier_maps, dim=1)))
        return F.dropout(new_maps, self.drop_rate, self.training) if self.drop_rate else new_maps


class DenseBlock(nn.Module):
    """``num_layers`` dense layers; layer l gets the block input and the k maps of each earlier one.

    The block returns all of them concatenated: in_channels + num_layers * k maps.
    """

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bottleneck: bool,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, bottleneck, drop_rate)
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        maps = [x]
        for layer in self.layers:
            maps.append(layer(maps))
        return torch.cat(maps, dim=1)


class Transition(nn.Sequential):
    """Between blocks: BN -> ReLU -> 1x1 conv keeping ``compression`` of the maps -> 2x2 avg-pool.

    Concatenation needs equal map sizes, so resolution only drops here.
    """

    def __init__(self, in_channels: int, compression: float) -> None:
        out_channels = int(in_channels * compression)
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_channels),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
                pool=nn.AvgPool2d(2, stride=2),
            )
        )
        self.out_channels = out_channels


class DenseNet(Classifier):
    """Stem -> (dense block -> transition) x (n - 1) -> dense block -> BN-ReLU -> pool -> FC.

    Stages (``feature_info``): ImageNet networks give the stem (stride 2) and
    the output of each dense block (strides 4, 8, 16, 32; the last after the
    final BN-ReLU). CIFAR networks give the three dense blocks (strides 1, 2, 4).
    """

    head_modules = ("classifier",)

    def __init__(
        self,
        config: DenseNetConfig,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= drop_rate < 1.0:
            raise CnnzooError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.num_classes, self.in_channels = num_classes, in_channels
        channels = config.stem_channels
        self.stem_is_stage = config.imagenet_stem
        if config.imagenet_stem:
            self.stem = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False),
                    norm=nn.BatchNorm2d(channels),
                    relu=nn.ReLU(inplace=True),
                )
            )
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
            self.feature_info = [FeatureInfo("stem", channels, 2)]
            stride, self.min_input_size = 4, 32
        else:
            # Section 4.2: one 3x3 convolution; the first dense layer's BN-ReLU follows it.
            self.stem = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
            self.pool = nn.Identity()
            self.feature_info = []
            stride, self.min_input_size = 1, 8
            self.input_size = (3, 32, 32)  # CIFAR (§4.1)
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for index, num_layers in enumerate(config.block_layers):
            if index:
                self.transitions.append(Transition(channels, config.compression))
                channels, stride = self.transitions[-1].out_channels, stride * 2
            block = DenseBlock(
                num_layers, channels, config.growth_rate, config.bottleneck, drop_rate
            )
            self.blocks.append(block)
            channels = block.out_channels
            self.feature_info.append(FeatureInfo(f"blocks.{index}", channels, stride))
        self.final_norm = nn.BatchNorm2d(channels)
        self.classifier = nn.Linear(channels, num_classes)
        self._initialize()

    def _initialize(self) -> None:
        # He initialisation as the authors' Torch code and torchvision do.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def stages(self, x: Tensor) -> Iterator[Tensor]:
        """Each stage's output in turn, computed only as it is asked for."""
        x = self.stem(x)
        if self.stem_is_stage:
            yield x
        x = self.pool(x)
        for index, block in enumerate(self.blocks):
            if index:
                x = self.transitions[index - 1](x)
            x = block(x)
            if index == len(self.blocks) - 1:
                # The blocks end on a concatenation; BN-ReLU before pooling as in the paper's code.
                x = F.relu(self.final_norm(x), inplace=True)
            yield x

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        return list(self.stages(x))

    def forward_features(self, x: Tensor) -> Tensor:
        # Keeping only the latest stage frees each block's concatenated map once the next
        # transition has read it, so inference reuses that memory.
        return deque(self.stages(x), maxlen=1)[0]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))


# Table 1 of the paper (ImageNet, DenseNet-BC with k=32; densenet161 with k=48 and
# 96 stem maps), and section 4.2 for CIFAR: L=40 has 3 blocks of (40-4)/3 = 12 layers
# with 16 stem maps; BC L=100 has 3 blocks of (100-4)/6 = 16 bottleneck layers, 2k stem maps.
CONFIGS = {
    "densenet121": DenseNetConfig(32, (6, 12, 24, 16), 64, True, 0.5, True),
    "densenet169": DenseNetConfig(32, (6, 12, 32, 32), 64, True, 0.5, True),
    "densenet201": DenseNetConfig(32, (6, 12, 48, 32), 64, True, 0.5, True),
    "densenet161": DenseNetConfig(48, (6, 12, 36, 24), 96, True, 0.5, True),
    "densenet40_k12": DenseNetConfig(12, (12, 12, 12), 16, False, 1.0, False),
    "densenet_bc100_k12": DenseNetConfig(12, (16, 16, 16), 24, True, 0.5, False),
}


def _densenet(name: str, num_classes: int, in_channels: int, drop_rate: float = 0.0) -> DenseNet:
    return DenseNet(CONFIGS[name], num_classes, in_channels, drop_rate)


@register_model(family="DenseNet", paper=PAPER, torchvision="densenet121")
def densenet121(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet:
    return _densenet("densenet121", num_classes, in_channels, drop_rate)


@register_model(family="DenseNet", paper=PAPER, torchvision="densenet169")
def densenet169(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet:
    return _densenet("densenet169", num_classes, in_channels, drop_rate)


@register_model(family="DenseNet", paper=PAPER, torchvision="densenet201")
def densenet201(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet:
    return _densenet("densenet201", num_classes, in_channels, drop_rate)


@register_model(family="DenseNet", paper=PAPER, torchvision="densenet161")
def densenet161(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet:
    return _densenet("densenet161", num_classes, in_channels, drop_rate)


@register_model(family="DenseNet", paper=PAPER)
def densenet40_k12(num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet:
    return _densenet("densenet40_k12", num_classes, in_channels, drop_rate)


@register_model(family="DenseNet", paper=PAPER)
def densenet_bc100_k12(
    num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0
) -> DenseNet:
    return _densenet("densenet_bc100_k12", num_classes, in_channels, drop_rate)
