"""CIFAR-10 ResNets and their plain counterparts: the degradation experiment.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385, section 4.2 (``resnet20/32/44/56/110/1202``, ``plain20/32/44/56/110``).

What the design solved: on CIFAR-10 the paper shows the degradation problem in
its cleanest form. Plain networks of 20, 32, 44, 56 layers train *worse* the
deeper they are (Fig. 6, left), while the same networks with shortcuts train
better the deeper they are (Fig. 6, middle), up to 110 layers; 1202 layers still
optimise (training error < 0.1%) but over-fit.

The networks are 6n+2 layers deep: a 3x3 convolution with 16 filters, three
stages of n basic blocks on 32x32, 16x16 and 8x8 maps with 16, 32 and 64
filters (the first convolution of stages 2 and 3 has stride 2), global average
pooling and a fully connected layer. Every shortcut is the identity; where the
map halves and the channels double it subsamples and pads the new channels
with zeros (option A), so the shortcuts add no parameter and a ``plain``
network has exactly as many parameters as its residual twin.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import Classifier, FeatureInfo, outputs_in_turn
from cnnzoo.models.classification.resnet import (
    AttentionFactory,
    BasicBlock,
    BlockAttention,
    he_init,
)
from cnnzoo.models.registry import register_model

PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition, arXiv:1512.03385"

# Filters of the three stages (paper section 4.2).
STAGE_WIDTHS = (16, 32, 64)


class ZeroPadShortcut(nn.Module):
    """Option A identity shortcut: x subsampled to the new map size, zeros for new channels.

    Paper section 3.3: "the shortcut still performs identity mapping, with extra
    zero entries padded for increasing dimensions"; it has no parameters.
    """

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


def make_stage(
    in_channels: int,
    width: int,
    blocks: int,
    stride: int,
    shortcut: bool = True,
    attention: BlockAttention | None = None,
) -> nn.Sequential:
    """``blocks`` basic blocks of ``width`` filters, the first with ``stride``.

    Every shortcut is an identity (option A zero-padding where the shape
    changes); ``shortcut=False`` leaves them out for the plain baseline.
    """
    stage = []
    for index in range(blocks):
        block_stride = stride if index == 0 else 1
        identity: nn.Module = nn.Identity()
        if block_stride != 1 or in_channels != width:
            identity = ZeroPadShortcut(width, block_stride)
        stage.append(
            BasicBlock(
                in_channels,
                width,
                block_stride,
                shortcut=identity if shortcut else None,
                attention=attention,
            )
        )
        in_channels = width
    return nn.Sequential(*stage)


class CifarResNet(Classifier):
    """A 6n+2-layer CIFAR ResNet (or plain network, ``shortcut=False``).

    Untrained, in eval mode, batch norm is the identity and every block adds a
    branch about as large as its input, so the map doubles per block: ResNet-1202
    (200 blocks a stage) overflows to inf/NaN until training has set the running
    statistics. Train mode is unaffected.

    Args:
        depth: 6n + 2 weighted layers (20, 32, 44, 56, 110, 1202 in the paper).
        num_classes: outputs of the classifier.
        in_channels: channels of the input images.
        shortcut: False removes every shortcut (the paper's plain baselines).
        attention: channel attention for every block, called as
            ``attention(channels, spatial_size=side)``
            (see ``cnnzoo.models.classification.resnet``).
        input_size: nominal input side, from which each block's map size given to
            ``attention`` is computed (32 for CIFAR).
    """

    head_modules = ("fc",)
    input_size = (3, 32, 32)  # CIFAR-10 (§4.2)
    # Any side works (stride 4 in all); 8 leaves a 2x2 map for the last stage.
    min_input_size = 8

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        in_channels: int = 3,
        shortcut: bool = True,
        attention: AttentionFactory | None = None,
        input_size: int = 32,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise CnnzooError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, ...), got {depth}")
        blocks_per_stage = (depth - 2) // 6
        self.num_classes, self.in_channels = num_classes, in_channels
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, STAGE_WIDTHS[0], 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(STAGE_WIDTHS[0]),
                relu=nn.ReLU(inplace=True),
            )
        )
        self.feature_info = [FeatureInfo("stem", STAGE_WIDTHS[0], 1)]
        channels, stride, map_size = STAGE_WIDTHS[0], 1, input_size
        for index, width in enumerate(STAGE_WIDTHS, start=1):
            stage_stride = 1 if index == 1 else 2
            stride *= stage_stride
            map_size = -(-map_size // stage_stride)  # a padded 3x3/2 gives ceil(n / 2)
            block_attention = (
                None if attention is None else functools.partial(attention, spatial_size=map_size)
            )
            stage = make_stage(
                channels, width, blocks_per_stage, stage_stride, shortcut, block_attention
            )
            channels = width
            self.add_stage(f"stage{index}", stage, width, stride)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        # The paper initialises as He et al. 2015 (arXiv:1502.01852), its reference [13].
        he_init(self)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        return outputs_in_turn((self.stem, self.stage1, self.stage2, self.stage3), x)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.avgpool(features).flatten(1))


# Depths 6n+2 with n = 3, 5, 7, 9, 18, 200 (paper Table 6 and section 4.2).
@register_model(family="ResNet (CIFAR)", paper=PAPER)
def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(20, num_classes, in_channels)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def resnet32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(32, num_classes, in_channels)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def resnet44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(44, num_classes, in_channels)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def resnet56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(56, num_classes, in_channels)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def resnet110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(110, num_classes, in_channels)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def resnet1202(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(1202, num_classes, in_channels)


# The plain baselines of paper Fig. 6 (left); the paper trains them up to 56 layers.
@register_model(family="ResNet (CIFAR)", paper=PAPER)
def plain20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(20, num_classes, in_channels, shortcut=False)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def plain32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(32, num_classes, in_channels, shortcut=False)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def plain44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(44, num_classes, in_channels, shortcut=False)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def plain56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(56, num_classes, in_channels, shortcut=False)


@register_model(family="ResNet (CIFAR)", paper=PAPER)
def plain110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(110, num_classes, in_channels, shortcut=False)
