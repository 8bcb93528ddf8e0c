"""EfficientNet: scale depth, width and resolution together.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, arXiv:1905.11946.

What the design solved: networks were enlarged along one dimension at a time
(ResNet-18 -> 200 in depth, WideResNet in width, bigger images), and each
dimension alone saturates quickly. The paper scales all three with one
*compound coefficient* phi: depth by alpha^phi, width by beta^phi and
resolution by gamma^phi, with alpha = 1.2, beta = 1.1, gamma = 1.15 found by a
small grid search on the base network (alpha * beta^2 * gamma^2 ~ 2, so each
step of phi about doubles the FLOPs). The base network B0 came from a neural
architecture search and is built from MBConv blocks: MobileNet v2's inverted
residual with squeeze-and-excitation and the swish (SiLU) activation, trained
with stochastic depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import FeatureInfo, he_fan_out_init
from cnnzoo.models.classification.mobilenet import (
    SMALL_INPUT_SIDE,
    InvertedResidualNetwork,
    small_input_strides,
)
from cnnzoo.models.layers import ConvBNAct, InvertedResidual, SqueezeExcite, make_divisible
from cnnzoo.models.registry import register_model

PAPER = "Tan & Le 2019, EfficientNet: Rethinking Model Scaling for CNNs, arXiv:1905.11946"


@dataclass(frozen=True)
class MBConvRow:
    """One stage (row) of the paper's Table 1: ``repeats`` MBConv blocks of one shape."""

    expansion: int  # the "6" of MBConv6: expanded width / input width
    kernel_size: int  # depthwise kernel, 3 or 5
    stride: int  # stride of the row's first block
    out_channels: int  # channels of B0 (before width scaling)
    repeats: int  # blocks in B0 (before depth scaling)


# Table 1: EfficientNet-B0. Stem 3x3 conv to 32 channels, head 1x1 conv to 1280.
B0_ROWS = (
    MBConvRow(1, 3, 1, 16, 1),
    MBConvRow(6, 3, 2, 24, 2),
    MBConvRow(6, 5, 2, 40, 2),
    MBConvRow(6, 3, 2, 80, 3),
    MBConvRow(6, 5, 1, 112, 3),
    MBConvRow(6, 5, 2, 192, 4),
    MBConvRow(6, 3, 1, 320, 1),
)
B0_STEM_CHANNELS = 32
B0_HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class Scaling:
    """How far one variant scales B0 (compound scaling, section 3.3)."""

    width: float  # channel multiplier (beta^phi)
    depth: float  # block-count multiplier (alpha^phi)
    resolution: int  # input side the variant is trained at (224 * gamma^phi, rounded)
    dropout: float  # dropout before the classifier, larger for larger models
    bn_eps: float = 1e-5  # batch-norm epsilon
    bn_momentum: float = 0.1  # batch-norm momentum (PyTorch convention: 1 - TF decay)


# The released coefficients (tensorflow/tpu efficientnet_builder.py, as in torchvision).
# torchvision's B0-B4 weights use PyTorch's batch-norm defaults; its B5-B7 weights,
# ported from TensorFlow, keep TF's eps 1e-3 and decay 0.99.
SCALINGS = {
    "efficientnet_b0": Scaling(1.0, 1.0, 224, 0.2),
    "efficientnet_b1": Scaling(1.0, 1.1, 240, 0.2),
    "efficientnet_b2": Scaling(1.1, 1.2, 260, 0.3),
    "efficientnet_b3": Scaling(1.2, 1.4, 300, 0.3),
    "efficientnet_b4": Scaling(1.4, 1.8, 380, 0.4),
    "efficientnet_b5": Scaling(1.6, 2.2, 456, 0.4, 1e-3, 0.01),
    "efficientnet_b6": Scaling(1.8, 2.6, 528, 0.5, 1e-3, 0.01),
    "efficientnet_b7": Scaling(2.0, 3.1, 600, 0.5, 1e-3, 0.01),
}


def round_filters(channels: int, width: float) -> int:
    """Scale a channel count by ``width``, rounded to a multiple of 8 (reference code)."""
    return make_divisible(channels * width, 8)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a row's block count by ``depth``, rounding up so no row disappears."""
    return int(math.ceil(repeats * depth))


class EfficientNet(InvertedResidualNetwork):
    """Stem 3x3/2 -> 7 rows of MBConv blocks (Table 1, scaled) -> 1x1 conv -> pool -> FC.

    Args:
        scaling: the variant's width, depth, resolution and dropout.
        stochastic_depth_rate: drop probability of the last block's residual branch;
            block i of N drops with ``rate * i / N`` (0 for the first), as in
            the reference code and torchvision.
        squeeze: the SE squeeze, "avg" (the SE paper) or "conv" (a learned
            whole-map kernel sized for the variant's resolution).
        small_input: for 32x32 images (CIFAR): the stem and the first stride-2 row keep
            stride 1 (:func:`~cnnzoo.models.classification.mobilenet.small_input_strides`),
            so the last map is 4x4, not 1x1.

    Stages (``feature_info``) end where the resolution halves next: strides
    2, 4, 8, 16 and, after the head convolution, 32.
    """

    head_modules = ("classifier",)
    min_input_size = 32

    def __init__(
        self,
        scaling: Scaling,
        num_classes: int = 1000,
        in_channels: int = 3,
        stochastic_depth_rate: float = 0.2,
        squeeze: str = "avg",
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= stochastic_depth_rate < 1.0:
            raise CnnzooError(
                "stochastic_depth_rate must be in [0, 1) (0.2 is usual), "
                f"got {stochastic_depth_rate!r}"
            )
        if squeeze not in ("avg", "conv"):
            raise CnnzooError(f"squeeze must be 'avg' or 'conv', got {squeeze!r}")
        self.num_classes, self.in_channels = num_classes, in_channels
        # Each variant's resolution is part of its compound scaling (§3.3, Table 1).
        resolution, stem_stride = scaling.resolution, 2
        row_strides = [row.stride for row in B0_ROWS]
        if small_input:
            resolution, stem_stride = SMALL_INPUT_SIDE, 1
            row_strides = small_input_strides(row_strides)
            self.min_input_size = 8
        self.input_size = (3, resolution, resolution)
        norm = partial(nn.BatchNorm2d, eps=scaling.bn_eps, momentum=scaling.bn_momentum)
        conv = partial(ConvBNAct, activation=nn.SiLU, norm_layer=norm)
        channels = round_filters(B0_STEM_CHANNELS, scaling.width)
        self.stem = conv(in_channels, channels, 3, stride=stem_stride)
        total_blocks = sum(round_repeats(row.repeats, scaling.depth) for row in B0_ROWS)
        block_index, stride = 0, stem_stride
        rows, self.feature_info = [], []
        for row_index, row in enumerate(B0_ROWS):
            row_stride = row_strides[row_index]
            if row_stride == 2:
                # Resolution halves next: the previous row's output is a stage.
                self.feature_info.append(FeatureInfo(f"blocks.{row_index - 1}", channels, stride))
            stride *= row_stride
            out_channels = round_filters(row.out_channels, scaling.width)
            blocks = []
            for repeat in range(round_repeats(row.repeats, scaling.depth)):
                expanded = make_divisible(channels * row.expansion, 8)
                # SE bottleneck: a quarter of the block's *input* channels (reference code).
                se = SqueezeExcite(
                    expanded,
                    max(1, channels // 4),
                    activation=nn.SiLU,
                    squeeze=squeeze,
                    spatial_size=math.ceil(resolution / stride),
                )
                blocks.append(
                    InvertedResidual(
                        channels,
                        out_channels,
                        expanded,
                        row.kernel_size,
                        stride=row_stride if repeat == 0 else 1,
                        activation=nn.SiLU,
                        se=se,
                        drop_path_rate=stochastic_depth_rate * block_index / total_blocks,
                        norm_layer=norm,
                    )
                )
                channels = out_channels
                block_index += 1
            rows.append(nn.Sequential(*blocks))
        head_channels = round_filters(B0_HEAD_CHANNELS, scaling.width)
        final_conv = conv(channels, head_channels, 1)
        self.add_blocks_and_head(
            rows, final_conv, head_channels, stride, scaling.dropout, num_classes
        )
        # As torchvision: He (fan-out) convolutions, uniform(+-1/sqrt(classes)) classifier.
        he_fan_out_init(self, uniform_classifier_init)


def uniform_classifier_init(linear: nn.Linear) -> None:
    """U(-1/sqrt(classes), 1/sqrt(classes)) weights and zero bias, as torchvision's EfficientNet."""
    bound = 1.0 / math.sqrt(linear.out_features)
    nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.zeros_(linear.bias)


def _efficientnet(
    name: str, num_classes: int, in_channels: int, stochastic_depth_rate: float, squeeze: str
) -> EfficientNet:
    return EfficientNet(SCALINGS[name], num_classes, in_channels, stochastic_depth_rate, squeeze)


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b0")
def efficientnet_b0(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b0", num_classes, in_channels, stochastic_depth_rate, squeeze
    )


@register_model(family="EfficientNet", paper=PAPER)
def efficientnet_b0_cifar(
    num_classes: int = 10, in_channels: int = 3, stochastic_depth_rate: float = 0.2
) -> EfficientNet:
    """EfficientNet-B0 for 32x32 images: stem and first stride-2 row at stride 1 (4x4 last map)."""
    scaling = SCALINGS["efficientnet_b0"]
    return EfficientNet(scaling, num_classes, in_channels, stochastic_depth_rate, small_input=True)


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b1")
def efficientnet_b1(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b1", num_classes, in_channels, stochastic_depth_rate, squeeze
    )


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b2")
def efficientnet_b2(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b2", num_classes, in_channels, stochastic_depth_rate, squeeze
    )


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b3")
def efficientnet_b3(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b3", num_classes, in_channels, stochastic_depth_rate, squeeze
    )


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b4")
def efficientnet_b4(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b4", num_classes, in_channels, stochastic_depth_rate, squeeze
    )


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b5")
def efficientnet_b5(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b5", num_classes, in_channels, stochastic_depth_rate, squeeze
    )


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b6")
def efficientnet_b6(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b6", num_classes, in_channels, stochastic_depth_rate, squeeze
    )


@register_model(family="EfficientNet", paper=PAPER, torchvision="efficientnet_b7")
def efficientnet_b7(
    num_classes: int = 1000,
    in_channels: int = 3,
    stochastic_depth_rate: float = 0.2,
    squeeze: str = "avg",
) -> EfficientNet:
    return _efficientnet(
        "efficientnet_b7", num_classes, in_channels, stochastic_depth_rate, squeeze
    )
