"""ResNet: residual learning, so that depth stops hurting.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385 (ImageNet networks ``resnet18/34/50/101/152``).

What the design solved: stacking more layers onto a plain network made it
*worse* even on its training set (the degradation problem, paper Fig. 1) --
not over-fitting, but an optimisation difficulty. A residual block lets its
layers fit only the residual F(x) = H(x) - x and adds the input back through a
shortcut, y = F(x) + x. An identity mapping is then as easy as driving F to
zero, and gradients reach early layers through the shortcuts undiminished, so
a 152-layer network trains better than a 34-layer one.

Two blocks (paper Table 1): the *basic* block (two 3x3 convolutions) for
ResNet-18/34 and the *bottleneck* block (1x1 reduce -> 3x3 -> 1x1 expand, x4)
for ResNet-50/101/152. Like torchvision (ResNet "v1.5"), the bottleneck
downsamples in its 3x3 convolution rather than in the first 1x1 of the paper,
which loses no information in the 1x1 and gives the same parameters; this is
what makes torchvision's ImageNet weights fit exactly.

``output_stride`` 16 or 8 replaces the strides of layer4 (and layer3) with
dilation, as torchvision's ``replace_stride_with_dilation`` does for DeepLab:
the maps stay larger while the receptive field keeps growing. Every block
takes an optional channel-attention factory, which is how squeeze-and-excitation
plugs in (``cnnzoo.models.classification.senet``).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import Classifier, FeatureInfo, outputs_in_turn
from cnnzoo.models.registry import register_model

PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition, arXiv:1512.03385"

# A block-level attention factory: called with the channels of the map it rescales.
BlockAttention = Callable[[int], nn.Module]
# A network-level attention factory: called as attention(channels, spatial_size=side), where
# spatial_size is the side of that block's map at the network's nominal input size
# (needed by attention with a spatially sized squeeze, e.g. SE's squeeze="conv").
AttentionFactory = Callable[..., nn.Module]


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """1x1 convolution + batch norm matching x to F(x) where the shape changes (paper option B)."""
    conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
    return nn.Sequential(OrderedDict(conv=conv, bn=nn.BatchNorm2d(out_channels)))


class ResidualBlock(nn.Module):
    """y = relu(F(x) + shortcut(x)) (paper Eq. 1 and Fig. 2), whatever the residual F is.

    The two blocks below differ only in F (:meth:`build_residual` and
    :meth:`residual`); their arguments, the attention on F(x) and this addition
    are written once.

    Args:
        in_channels: channels of x.
        channels: channels of the block's convolutions; y has ``expansion * channels``.
        stride: stride of the first spatial convolution (2 where a stage halves the map).
        shortcut: maps x onto F(x)'s shape: identity (default), a 1x1 projection,
            or CIFAR's zero-padding shortcut; ``None`` gives a *plain* block without
            shortcut, the baseline of the degradation experiment (paper section 4.1).
        dilation: dilation of the 3x3 convolutions after the first 3x3;
            ``first_dilation`` that of the first 3x3 (they differ in the block where a
            stride turns into dilation).
        attention: factory of a channel-attention module applied to F(x) before the
            addition (SE, paper Fig. 3 of Hu et al.), called with the output channels.
    """

    expansion: int

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        shortcut: nn.Module | None = None,
        dilation: int = 1,
        first_dilation: int | None = None,
        attention: BlockAttention | None = None,
    ) -> None:
        super().__init__()
        first_dilation = dilation if first_dilation is None else first_dilation
        self.build_residual(in_channels, channels, stride, dilation, first_dilation)
        out_channels = channels * self.expansion
        self.attention = nn.Identity() if attention is None else attention(out_channels)
        self.shortcut = shortcut  # None: a plain block, without shortcut
        self.relu = nn.ReLU(inplace=True)

    def build_residual(
        self, in_channels: int, channels: int, stride: int, dilation: int, first_dilation: int
    ) -> None:
        """Create the layers of F, in the order they run (that order sets the initial weights)."""
        raise NotImplementedError

    def residual(self, x: Tensor) -> Tensor:
        """F(x): the part of the mapping the block has to learn."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        out = self.residual(x)
        if self.shortcut is not None:
            out += self.shortcut(x)  # y = F(x) + x, in place: F(x) is a fresh tensor
        return self.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions and a shortcut: y = relu(F(x) + shortcut(x)) (paper Fig. 2).

    Arguments as in :class:`ResidualBlock`: ``channels`` is the width of both
    convolutions and of y; the stride and ``first_dilation`` are the first's.
    """

    expansion = 1

    def build_residual(
        self, in_channels: int, channels: int, stride: int, dilation: int, first_dilation: int
    ) -> None:
        self.conv1 = nn.Conv2d(
            in_channels, channels, 3, stride, first_dilation, first_dilation, bias=False
        )
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def residual(self, x: Tensor) -> Tensor:
        """F(x): the part of the mapping the block has to learn."""
        out = self.relu(self.bn1(self.conv1(x)))
        return self.attention(self.bn2(self.conv2(out)))


class Bottleneck(ResidualBlock):
    """1x1 reduce -> 3x3 -> 1x1 expand (x4) and a shortcut (paper Fig. 5, right).

    The 1x1 layers shrink and restore the channels so that the 3x3 works on a
    quarter of them: a 50-layer network costs about as much as the 34-layer one.
    The stride sits on the 3x3 (torchvision's v1.5; the paper strides the first
    1x1). Arguments as in :class:`ResidualBlock`; ``channels`` is the bottleneck
    width and y has ``4 * channels``.
    """

    expansion = 4

    def build_residual(
        self, in_channels: int, channels: int, stride: int, dilation: int, first_dilation: int
    ) -> None:
        # The block's only 3x3 uses the dilation of the map it reads: ``first_dilation``.
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(
            channels, channels, 3, stride, first_dilation, first_dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def residual(self, x: Tensor) -> Tensor:
        """F(x): reduce, transform, expand."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.attention(self.bn3(self.conv3(out)))


Block = type[BasicBlock] | type[Bottleneck]

# Which strides turn into dilation (layer2, layer3, layer4) for each output stride.
DILATED_STAGES = {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)}


def make_stage(
    block: Block,
    in_channels: int,
    width: int,
    blocks: int,
    stride: int = 1,
    dilation: int = 1,
    first_dilation: int = 1,
    attention: BlockAttention | None = None,
) -> nn.Sequential:
    """``blocks`` blocks of ``width``; the first changes stride and channels, the rest keep them.

    Where the shape changes, the shortcut is a 1x1 projection with batch
    normalisation (paper option B, as torchvision); elsewhere it is the identity.
    """
    out_channels = width * block.expansion
    stage = []
    for index in range(blocks):
        shortcut: nn.Module = nn.Identity()
        if index == 0 and (stride != 1 or in_channels != out_channels):
            shortcut = projection_shortcut(in_channels, out_channels, stride)
        stage.append(
            block(
                in_channels if index == 0 else out_channels,
                width,
                stride=stride if index == 0 else 1,
                shortcut=shortcut,
                dilation=dilation,
                first_dilation=first_dilation if index == 0 else dilation,
                attention=attention,
            )
        )
    return nn.Sequential(*stage)


class ResNet(Classifier):
    """The ImageNet ResNet of paper Table 1.

    conv1 7x7/2 (the ``stem``), 3x3/2 max-pool, then four stages of blocks with
    64, 128, 256, 512 channels (x4 for bottlenecks), each but the first halving
    the map, global average pooling and one fully connected layer.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: number of blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        num_classes: outputs of the classifier.
        in_channels: channels of the input images.
        output_stride: 32 (paper), 16 or 8 (dilated layer4, layer3+layer4).
        attention: channel attention for every block, see :data:`AttentionFactory`.
        input_size: the nominal input side, from which each block's map size given
            to ``attention`` is computed (224 for ImageNet).
    """

    head_modules = ("fc",)
    min_input_size = 32

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        output_stride: int = 32,
        attention: AttentionFactory | None = None,
        input_size: int = 224,
    ) -> None:
        super().__init__()
        if output_stride not in DILATED_STAGES:
            raise CnnzooError(
                f"output_stride must be 32, 16 or 8, got {output_stride!r}; 8 and 16 "
                "replace the last strides with dilation (for segmentation backbones)"
            )
        self.num_classes, self.in_channels = num_classes, in_channels
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
                bn=nn.BatchNorm2d(64),
                relu=nn.ReLU(inplace=True),
            )
        )
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.feature_info = [FeatureInfo("stem", 64, 2)]
        channels, stride, dilation = 64, 4, 1
        map_size = _halved(input_size, times=2)  # after conv1 and the max-pool
        dilated = (False, *DILATED_STAGES[output_stride])
        stages = zip((64, 128, 256, 512), layers, (1, 2, 2, 2), dilated)
        for index, (width, blocks, stage_stride, dilate) in enumerate(stages, start=1):
            # Like torchvision, a dilated stage keeps the previous dilation in its
            # first 3x3 and multiplies it by the stride it drops from then on.
            first_dilation = dilation
            if dilate:
                dilation, stage_stride = dilation * stage_stride, 1
            stride *= stage_stride
            map_size = _halved(map_size, times=stage_stride // 2)
            block_attention = (
                None if attention is None else functools.partial(attention, spatial_size=map_size)
            )
            stage = make_stage(
                block,
                channels,
                width,
                blocks,
                stage_stride,
                dilation,
                first_dilation,
                block_attention,
            )
            channels = width * block.expansion
            self.add_stage(f"layer{index}", stage, channels, stride)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        he_init(self)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        stem = self.stem(x)
        layers = (self.layer1, self.layer2, self.layer3, self.layer4)
        return [stem, *outputs_in_turn(layers, self.maxpool(stem))]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.avgpool(features).flatten(1))


def _halved(size: int, times: int) -> int:
    """Map side after ``times`` stride-2 layers padded like ours (each gives ceil(n / 2))."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


def he_init(model: nn.Module) -> None:
    """He initialisation (He et al. 2015, arXiv:1502.01852) for convolutions, as torchvision."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# Blocks per stage from paper Table 1.
@register_model(family="ResNet", paper=PAPER, torchvision="resnet18")
def resnet18(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, output_stride)


@register_model(family="ResNet", paper=PAPER, torchvision="resnet34")
def resnet34(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels, output_stride)


@register_model(family="ResNet", paper=PAPER, torchvision="resnet50")
def resnet50(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, output_stride)


@register_model(family="ResNet", paper=PAPER, torchvision="resnet101")
def resnet101(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes, in_channels, output_stride)


@register_model(family="ResNet", paper=PAPER, torchvision="resnet152")
def resnet152(num_classes: int = 1000, in_channels: int = 3, output_stride: int = 32) -> ResNet:
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes, in_channels, output_stride)
