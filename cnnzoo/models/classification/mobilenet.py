"""MobileNets: convolutional networks cheap enough for phones.

* Howard et al., "MobileNets: Efficient Convolutional Neural Networks for
  Mobile Vision Applications", 2017, arXiv:1704.04861 (``mobilenet_v1``).
* Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and
  Linear Bottlenecks", CVPR 2018, arXiv:1801.04381 (``mobilenet_v2``).
* Howard et al., "Searching for MobileNetV3", ICCV 2019, arXiv:1905.02244
  (``mobilenet_v3_large``, ``mobilenet_v3_small``).

What the designs solved: a standard k x k convolution filters and mixes
channels in one step, costing k*k*M*N multiply-adds per pixel. MobileNet v1
factorises it into a *depthwise* k x k convolution (one filter per channel)
and a *pointwise* 1x1 convolution that mixes channels, for k*k*M + M*N: 8-9
times fewer operations with 3x3 kernels at a small loss of accuracy. A width
multiplier thins every layer to trade accuracy for size. MobileNet v2 puts
the depthwise convolution inside an *inverted residual* block: expand the thin
tensor, filter it depthwise, project it back linearly, and add the shortcut
between the thin ends (see :mod:`cnnzoo.models.layers.inverted_residual`).
MobileNet v3 keeps that block but lets an architecture search choose each
block's kernel and width, adds squeeze-and-excitation with a hard sigmoid,
and replaces swish by the cheaper hard-swish x * ReLU6(x + 3) / 6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import (
    Classifier,
    FeatureInfo,
    he_fan_out_init,
    outputs_in_turn,
    small_normal_init,
)
from cnnzoo.models.layers import ConvBNAct, InvertedResidual, SqueezeExcite, make_divisible
from cnnzoo.models.registry import register_model

PAPER_V1 = "Howard et al. 2017, MobileNets, arXiv:1704.04861"
PAPER_V2 = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks, "
PAPER_V2 += "arXiv:1801.04381"
PAPER_V3 = "Howard et al. 2019, Searching for MobileNetV3, arXiv:1905.02244"


def _check_width(width_mult: float) -> None:
    if isinstance(width_mult, bool) or not isinstance(width_mult, int | float) or width_mult <= 0:
        raise CnnzooError(f"width_mult must be a positive number (e.g. 0.5), got {width_mult!r}")


# ---------------------------------------------------------------- MobileNet v1


class DepthwiseSeparable(nn.Sequential):
    """Depthwise 3x3 (one filter per channel) -> BN-ReLU -> pointwise 1x1 -> BN-ReLU (Fig. 3)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = ConvBNAct(in_channels, out_channels, 1)


# Table 1 of the v1 paper: (pointwise output channels, depthwise stride) of the 13
# separable layers after the 32-channel stride-2 stem. The paper lists stride 2 for the
# last depthwise layer, but its own 7x7 output sizes (and every implementation) use 1.
V1_LAYERS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *[(512, 1)] * 5,
    (1024, 2),
    (1024, 1),
)


class MobileNetV1(Classifier):
    """Stem 3x3/2 conv -> 13 depthwise separable layers -> global average pool -> FC.

    ``width_mult`` is the paper's width multiplier alpha (section 3.3): every
    layer gets ``int(alpha * channels)`` channels, cutting cost and parameters
    roughly by alpha squared. Stages end before each stride-2 layer (strides 2 to 32).
    """

    head_modules = ("classifier",)
    min_input_size = 32

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0
    ) -> None:
        super().__init__()
        _check_width(width_mult)
        self.num_classes, self.in_channels = num_classes, in_channels
        channels = int(32 * width_mult)
        self.stem = ConvBNAct(in_channels, channels, 3, stride=2)
        stages: list[list[nn.Module]] = [[]]
        for out_channels, layer_stride in V1_LAYERS:
            out_channels = int(out_channels * width_mult)
            if layer_stride == 2:
                stages.append([])
            stages[-1].append(DepthwiseSeparable(channels, out_channels, layer_stride))
            channels = out_channels
        self.stages = nn.ModuleList(nn.Sequential(*stage) for stage in stages)
        # The stem halves the input; each later stage starts with a stride-2 layer.
        self.feature_info = [
            FeatureInfo(f"stages.{index}", stage[-1].pointwise.out_channels, 2 ** (index + 1))
            for index, stage in enumerate(self.stages)
        ]
        self.classifier = nn.Linear(channels, num_classes)
        he_fan_out_init(self, small_normal_init)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        return outputs_in_turn(self.stages, self.stem(x))

    def forward_head(self, features: Tensor) -> Tensor:
        return self.classifier(features.mean(dim=(2, 3)))


# ---------------------------------------------------------------- MobileNet v2

# Table 2 of the v2 paper: expansion t, output channels c, repeats n, first stride s.
V2_ROWS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


# At 32x32 (CIFAR-10) the ImageNet strides (2 in the stem, four stride-2 rows) leave a 1x1
# map before the pool; the small-input variants keep the stem and the first stride-2 row at
# stride 1, so the last map is 4x4 (total stride 8), as CIFAR adaptations of these networks do.
SMALL_INPUT_SIDE = 32


def small_input_strides(row_strides: Sequence[int]) -> list[int]:
    """The rows' first strides with the first stride-2 row at stride 1 (the stem too is 1)."""
    strides, kept = list(row_strides), False
    for index, stride in enumerate(strides):
        if stride == 2 and not kept:
            strides[index], kept = 1, True
    return strides


class InvertedResidualNetwork(Classifier):
    """Stem -> rows of inverted residual blocks -> 1x1 conv -> global pool -> dropout -> FC.

    The layout MobileNetV2 introduced and MobileNetV3 and EfficientNet keep,
    so its forward pass is written once, here. A subclass builds ``stem``,
    ``blocks`` (one entry per row of its paper's table), ``final_conv``,
    ``dropout`` and ``classifier``, and lists in ``stage_rows`` the rows after
    which the resolution halves next; :meth:`add_blocks_and_head` does all but
    the stem for a network whose final convolution feeds the classifier directly.
    """

    stage_rows: set[int]  # rows whose output is a stage of ``feature_info``
    stem_is_stage = False  # whether the stem's output is the first stage

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        stages = [x] if self.stem_is_stage else []
        for index, row in enumerate(self.blocks):
            x = row(x)
            if index in self.stage_rows:
                stages.append(x)
        stages.append(self.final_conv(x))
        return stages

    def add_blocks_and_head(
        self,
        rows: list[nn.Sequential],
        final_conv: nn.Module,
        final_channels: int,
        stride: int,
        dropout: float,
        num_classes: int,
    ) -> None:
        """Register the rows of blocks, the final 1x1 convolution (the last stage) and the
        classifier, in that order, after the stages of ``rows`` are in ``feature_info``."""
        self.blocks = nn.Sequential(*rows)
        self.stage_rows = {int(info.name.split(".")[1]) for info in self.feature_info}
        self.final_conv = final_conv
        self.feature_info.append(FeatureInfo("final_conv", final_channels, stride))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(final_channels, num_classes)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.classifier(self.dropout(features.mean(dim=(2, 3))))


class MobileNetV2(InvertedResidualNetwork):
    """Stem 3x3/2 conv -> 17 inverted residual blocks (Table 2) -> 1x1 conv to 1280 -> pool -> FC.

    Args:
        width_mult: the width multiplier; channels are rounded to multiples of 8
            and the last layer never shrinks below 1280 (section 5.1).
        output_stride: 32 for classification; 16 or 8 replace the last stride-2
            depthwise convolutions by dilated ones, keeping resolution for
            segmentation as DeepLab-v3+ does with this backbone (Chen et al. 2018,
            arXiv:1802.02611).
        se_ratio: >0 inserts squeeze-and-excitation after each depthwise
            convolution with ``se_ratio * block input channels`` bottleneck units
            (as MnasNet and EfficientNet place it); 0 is the paper's network.
        squeeze: the SE squeeze, "avg" (the SE paper) or "conv" (a learned
            whole-map kernel; see :class:`~cnnzoo.models.layers.SqueezeExcite`).
        dropout: dropout before the classifier (0.2 as torchvision).
        small_input: for 32x32 images (CIFAR): the stem and the first stride-2 row keep
            stride 1 (:func:`small_input_strides`), so the last map is 4x4, not 1x1.
    """

    head_modules = ("classifier",)
    min_input_size = 32
    nominal_size = 224  # the input the learned "conv" squeeze kernels are sized for

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        output_stride: int = 32,
        se_ratio: float = 0.0,
        squeeze: str = "avg",
        dropout: float = 0.2,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        _check_width(width_mult)
        if output_stride not in (8, 16, 32):
            raise CnnzooError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        if not 0.0 <= se_ratio <= 1.0:
            raise CnnzooError(f"se_ratio must be in [0, 1] (0.25 is usual), got {se_ratio!r}")
        if squeeze not in ("avg", "conv"):
            raise CnnzooError(f"squeeze must be 'avg' or 'conv', got {squeeze!r}")
        self.num_classes, self.in_channels = num_classes, in_channels
        channels = make_divisible(32 * width_mult)
        row_strides = [row[3] for row in V2_ROWS]
        stem_stride = 2
        if small_input:
            row_strides, stem_stride = small_input_strides(row_strides), 1
            self.input_size = (3, SMALL_INPUT_SIDE, SMALL_INPUT_SIDE)
            self.nominal_size, self.min_input_size = SMALL_INPUT_SIDE, 8
        self.stem = ConvBNAct(in_channels, channels, 3, stride=stem_stride, activation=nn.ReLU6)
        stride, dilation = stem_stride, 1
        rows, self.feature_info = [], []
        for row_index, (expansion, out_channels, repeats, _) in enumerate(V2_ROWS):
            first_stride = row_strides[row_index]
            out_channels = make_divisible(out_channels * width_mult)
            if first_stride == 2:
                # Resolution halves next: the previous row's output is a stage.
                self.feature_info.append(FeatureInfo(f"blocks.{row_index - 1}", channels, stride))
            blocks = []
            for repeat in range(repeats):
                block_stride = first_stride if repeat == 0 else 1
                block_dilation = dilation
                if block_stride == 2 and stride == output_stride:
                    # Atrous: keep the resolution, widen all later kernels instead.
                    block_stride, dilation = 1, dilation * 2
                stride *= block_stride
                hidden = int(round(channels * expansion))
                se = None
                if se_ratio > 0:
                    se = SqueezeExcite(
                        hidden,
                        max(1, int(channels * se_ratio)),
                        squeeze=squeeze,
                        spatial_size=math.ceil(self.nominal_size / stride),
                    )
                blocks.append(
                    InvertedResidual(
                        channels,
                        out_channels,
                        hidden,
                        stride=block_stride,
                        dilation=block_dilation,
                        activation=nn.ReLU6,
                        se=se,
                    )
                )
                channels = out_channels
            rows.append(nn.Sequential(*blocks))
        last_channels = make_divisible(1280 * max(1.0, width_mult))
        final_conv = ConvBNAct(channels, last_channels, 1, activation=nn.ReLU6)
        self.add_blocks_and_head(rows, final_conv, last_channels, stride, dropout, num_classes)
        he_fan_out_init(self, small_normal_init)


# ---------------------------------------------------------------- MobileNet v3


@dataclass(frozen=True)
class V3Block:
    """One row of the v3 paper's Table 1 (large) or Table 2 (small): a bottleneck block."""

    kernel_size: int  # the depthwise kernel
    expanded: int  # "exp size": channels after the 1x1 expansion
    out_channels: int  # "#out"
    se: bool  # squeeze-and-excitation after the depthwise convolution
    hard_swish: bool  # "NL": hard-swish (HS) or ReLU (RE)
    stride: int  # the depthwise stride


@dataclass(frozen=True)
class V3Config:
    """A MobileNet v3 network: its blocks and the width of its last layers."""

    blocks: tuple[V3Block, ...]
    hidden_channels: int  # the 1x1 "NBN" layer after pooling (1280 large, 1024 small)


V3_LARGE = V3Config(
    (
        V3Block(3, 16, 16, False, False, 1),
        V3Block(3, 64, 24, False, False, 2),
        V3Block(3, 72, 24, False, False, 1),
        V3Block(5, 72, 40, True, False, 2),
        V3Block(5, 120, 40, True, False, 1),
        V3Block(5, 120, 40, True, False, 1),
        V3Block(3, 240, 80, False, True, 2),
        V3Block(3, 200, 80, False, True, 1),
        V3Block(3, 184, 80, False, True, 1),
        V3Block(3, 184, 80, False, True, 1),
        V3Block(3, 480, 112, True, True, 1),
        V3Block(3, 672, 112, True, True, 1),
        V3Block(5, 672, 160, True, True, 2),
        V3Block(5, 960, 160, True, True, 1),
        V3Block(5, 960, 160, True, True, 1),
    ),
    hidden_channels=1280,
)
V3_SMALL = V3Config(
    (
        V3Block(3, 16, 16, True, False, 2),
        V3Block(3, 72, 24, False, False, 2),
        V3Block(3, 88, 24, False, False, 1),
        V3Block(5, 96, 40, True, True, 2),
        V3Block(5, 240, 40, True, True, 1),
        V3Block(5, 240, 40, True, True, 1),
        V3Block(5, 120, 48, True, True, 1),
        V3Block(5, 144, 48, True, True, 1),
        V3Block(5, 288, 96, True, True, 2),
        V3Block(5, 576, 96, True, True, 1),
        V3Block(5, 576, 96, True, True, 1),
    ),
    hidden_channels=1024,
)


class MobileNetV3(InvertedResidualNetwork):
    """Stem 3x3/2 (16, hard-swish) -> searched bottleneck blocks -> 1x1 conv -> pool -> FC-HS -> FC.

    Section 5.1: the last stage pools *before* its 1280/1024-wide layer, which
    therefore works on a 1x1 map (an FC layer) and costs almost nothing.
    ``width_mult`` scales every layer, rounded to multiples of 8. Stages end
    before each stride-2 block (strides 2 to 32).
    """

    head_modules = ("hidden", "classifier")
    min_input_size = 32

    def __init__(
        self,
        config: V3Config,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        _check_width(width_mult)
        self.num_classes, self.in_channels = num_classes, in_channels
        # TensorFlow's batch-norm settings, as torchvision's weights were trained with.
        norm = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
        channels = make_divisible(16 * width_mult)
        self.stem = ConvBNAct(
            in_channels, channels, 3, stride=2, activation=nn.Hardswish, norm_layer=norm
        )
        stride, blocks, self.feature_info = 2, [], []
        for index, spec in enumerate(config.blocks):
            if spec.stride == 2:
                # Resolution halves next: what came before is a stage.
                name = f"blocks.{index - 1}" if index else "stem"
                self.feature_info.append(FeatureInfo(name, channels, stride))
                stride *= 2
            expanded = make_divisible(spec.expanded * width_mult)
            out_channels = make_divisible(spec.out_channels * width_mult)
            se = None
            if spec.se:
                se = SqueezeExcite(expanded, make_divisible(expanded // 4), gate=nn.Hardsigmoid)
            blocks.append(
                InvertedResidual(
                    channels,
                    out_channels,
                    expanded,
                    spec.kernel_size,
                    spec.stride,
                    activation=nn.Hardswish if spec.hard_swish else nn.ReLU,
                    se=se,
                    norm_layer=norm,
                )
            )
            channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.stem_is_stage = self.feature_info[0].name == "stem"
        self.stage_rows = {
            int(info.name.split(".")[1]) for info in self.feature_info if info.name != "stem"
        }
        # Tables 1-2: the last 1x1 convolution is 6x the last block's width (960, 576).
        final_channels = 6 * channels
        self.final_conv = ConvBNAct(
            channels, final_channels, 1, activation=nn.Hardswish, norm_layer=norm
        )
        self.feature_info.append(FeatureInfo("final_conv", final_channels, stride))
        hidden = make_divisible(config.hidden_channels * width_mult)
        self.hidden = nn.Sequential(nn.Linear(final_channels, hidden), nn.Hardswish())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes)
        he_fan_out_init(self, small_normal_init)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.hidden(features.mean(dim=(2, 3)))))


@register_model(family="MobileNet", paper=PAPER_V1)
def mobilenet_v1(
    num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0
) -> MobileNetV1:
    return MobileNetV1(num_classes, in_channels, width_mult)


@register_model(family="MobileNet", paper=PAPER_V2, torchvision="mobilenet_v2")
def mobilenet_v2(
    num_classes: int = 1000,
    in_channels: int = 3,
    width_mult: float = 1.0,
    output_stride: int = 32,
    se_ratio: float = 0.0,
    squeeze: str = "avg",
) -> MobileNetV2:
    return MobileNetV2(num_classes, in_channels, width_mult, output_stride, se_ratio, squeeze)


@register_model(family="MobileNet", paper=PAPER_V2)
def mobilenet_v2_cifar(
    num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0
) -> MobileNetV2:
    """MobileNet-v2 for 32x32 images: stem and first stride-2 row at stride 1 (4x4 last map)."""
    return MobileNetV2(num_classes, in_channels, width_mult, small_input=True)


@register_model(family="MobileNet", paper=PAPER_V3, torchvision="mobilenet_v3_large")
def mobilenet_v3_large(
    num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0
) -> MobileNetV3:
    return MobileNetV3(V3_LARGE, num_classes, in_channels, width_mult)


@register_model(family="MobileNet", paper=PAPER_V3, torchvision="mobilenet_v3_small")
def mobilenet_v3_small(
    num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0
) -> MobileNetV3:
    return MobileNetV3(V3_SMALL, num_classes, in_channels, width_mult)
