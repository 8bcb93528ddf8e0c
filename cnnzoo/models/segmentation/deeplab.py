"""DeepLab: atrous (dilated) convolution for dense features, and pyramids of it for scale.

* Chen et al., "Semantic Image Segmentation with Deep Convolutional Nets and
  Fully Connected CRFs", ICLR 2015, arXiv:1412.7062 (``deeplab_v1_largefov``).
* Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional
  Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2017,
  arXiv:1606.00915 (``deeplab_v2``).
* Chen et al., "Rethinking Atrous Convolution for Semantic Image
  Segmentation", 2017, arXiv:1706.05587 (``deeplab_v3``).
* Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic
  Image Segmentation", ECCV 2018, arXiv:1802.02611 (``deeplab_v3plus``).

What the design solved: a classifier's repeated pooling leaves a map at 1/32
of the image, too coarse for boundaries, and FCN recovers detail only with
learned upsampling and skips. DeepLab removes the last strides and dilates the
convolutions after them (atrous convolution: a 3x3 kernel with holes, rate r,
sees (2r+1)^2 pixels for 9 weights), so the features stay at 1/8 of the image
with an unchanged receptive field, and bilinear interpolation suffices (v1).
Objects appear at many scales: v2's atrous spatial pyramid pooling (ASPP)
classifies with parallel rates 6/12/18/24 and sums the scores; v3 adds batch
norm, a 1x1 branch and image-level pooling for global context; v3+ adds a
light decoder that refines the upsampled ASPP features with stride-4
low-level features, for sharper boundaries.

The fully connected CRF post-processing of v1/v2 is not part of the networks.
Backbones come from the registry through their feature interface
(``backbone=``, ``output_stride=``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import FeatureExtractor
from cnnzoo.models.layers.conv_bn_act import ConvBNAct
from cnnzoo.models.registry import get_model_entry, register_model
from cnnzoo.models.segmentation.base import (
    SegmentationModel,
    SegmentationOutput,
    bilinear_resize,
    create_encoder,
    init_weights,
    stage_index,
)
from cnnzoo.models.segmentation.fcn import FCNHead

PAPER_V1 = "Chen et al. 2014, DeepLab v1 (LargeFOV), arXiv:1412.7062"
PAPER_V2 = "Chen et al. 2016, DeepLab v2 (ASPP), arXiv:1606.00915"
PAPER_V3 = "Chen et al. 2017, Rethinking Atrous Convolution (DeepLab v3), arXiv:1706.05587"
PAPER_V3PLUS = "Chen et al. 2018, Encoder-Decoder with Atrous Separable Conv, arXiv:1802.02611"

# v1 LargeFOV (§4): fc6 subsampled to 3x3 with 1024 channels at rate 12 (a 25x25 view).
LARGEFOV_RATE, LARGEFOV_CHANNELS = 12, 1024
# v2 ASPP-L (§3.3, Fig. 7): four branches at output stride 8.
ASPP_V2_RATES = (6, 12, 18, 24)
# v3 (§3.3): rates at output stride 16, doubled at output stride 8.
ASPP_V3_RATES = (6, 12, 18)
ASPP_CHANNELS = 256
V3PLUS_LOW_LEVEL_CHANNELS = 48  # v3+ §4.1: fewer than the 256 ASPP channels, to not dominate


def is_vgg(backbone: str) -> bool:
    """Whether ``backbone`` is a VGG, whose fc layers DeepLab turns into dilated convolutions."""
    return get_model_entry(backbone).family == "VGG"


class DeepLabModel(SegmentationModel):
    """Shared set-up: the encoder, the padding it needs, and bilinear upsampling of the scores."""

    def __init__(self, encoder: FeatureExtractor, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.encoder = encoder
        self.size_divisor = max(info.stride for info in encoder.feature_info)
        self.min_segment_size = max(encoder.min_input_size, self.size_divisor)


def dilated_fc(
    in_channels: int, rate: int, num_classes: int, channels: int = LARGEFOV_CHANNELS
) -> nn.Sequential:
    """fc6 (3x3, rate ``rate``, ``channels``) -> fc7 (1x1, ``channels``) -> fc8 (1x1, scores),
    dropout 0.5 after fc6 and fc7.

    ``channels`` is LargeFOV's 1024 (v1 §4); a narrower head keeps the same layers for a
    network scaled down to train in minutes.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=rate, dilation=rate),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(channels, channels, 1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(channels, num_classes, 1),
    )


def init_head(head: nn.Module, score_layers: Sequence[nn.Conv2d]) -> None:
    """He initialisation for ``head``, except its layers that output class scores: N(0, 0.01).

    He's "fan_out" scaling divides by the few output channels of a score layer
    (2 for a binary task), giving its weights a standard deviation near 1 and
    logits in the tens: training then starts far off and, without batch norm in
    the head, diverges. DeepLab's released models start fc8 from a Gaussian
    of standard deviation 0.01.
    """
    init_weights(head)
    for layer in score_layers:
        nn.init.normal_(layer.weight, std=0.01)


def _last_conv(branch: nn.Module) -> nn.Conv2d:
    return branch if isinstance(branch, nn.Conv2d) else branch[-1]


class DeepLabV1(DeepLabModel):
    """VGG-16 at output stride 8 -> LargeFOV fc6/fc7/fc8 -> bilinear upsampling x8.

    The encoder's pool4 and pool5 run at stride 1 and conv5 is dilated by 2
    (the backbone's ``output_stride=8``); fc6 is dilated by 12.
    """

    input_size = (3, 321, 321)  # the VOC training crops (v1 §4)

    def __init__(self, encoder: FeatureExtractor, num_classes: int, in_channels: int) -> None:
        super().__init__(encoder, num_classes, in_channels)
        self.classifier = dilated_fc(encoder.feature_info[-1].channels, LARGEFOV_RATE, num_classes)
        init_head(self.classifier, [self.classifier[-1]])

    def segment(self, x: Tensor) -> Tensor:
        return bilinear_resize(self.classifier(self.encoder(x)[-1]), x.shape[-2:])


class SummedASPP(nn.Module):
    """v2's atrous spatial pyramid pooling: one classifier per rate, scores summed (Fig. 4).

    On VGG each branch is a LargeFOV classifier (fc6 at the branch's rate,
    fc7, fc8: ASPP-L); on other backbones, as in the released ResNet-101
    model, each is one 3x3 convolution to the scores at its rate.
    """

    def __init__(
        self, in_channels: int, num_classes: int, rates: Sequence[int], fully_connected: bool
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            dilated_fc(in_channels, rate, num_classes)
            if fully_connected
            else nn.Conv2d(in_channels, num_classes, 3, padding=rate, dilation=rate)
            for rate in rates
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([branch(x) for branch in self.branches]).sum(0)


class DeepLabV2(DeepLabModel):
    """Backbone at output stride 8 -> ASPP with rates 6/12/18/24, summed -> bilinear x8."""

    input_size = (3, 321, 321)  # the VOC training crops (v2 §4.1)

    def __init__(
        self, encoder: FeatureExtractor, num_classes: int, in_channels: int, fully_connected: bool
    ) -> None:
        super().__init__(encoder, num_classes, in_channels)
        channels = encoder.feature_info[-1].channels
        self.aspp = SummedASPP(channels, num_classes, ASPP_V2_RATES, fully_connected)
        init_head(self.aspp, [_last_conv(branch) for branch in self.aspp.branches])

    def segment(self, x: Tensor) -> Tensor:
        return bilinear_resize(self.aspp(self.encoder(x)[-1]), x.shape[-2:])


class ImagePooling(nn.Module):
    """v3's image-level features: global average pooling, 1x1 conv + BN, upsampled back (§3.3)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ConvBNAct(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return bilinear_resize(self.conv(self.pool(x)), x.shape[-2:])


class ASPP(nn.Module):
    """v3's ASPP: 1x1 conv, three 3x3 atrous convs, image pooling (all 256 + BN), concatenated,
    then a 1x1 conv + BN projection (§3.3) and dropout 0.5 (as torchvision)."""

    def __init__(self, in_channels: int, rates: Sequence[int], channels: int = ASPP_CHANNELS):
        super().__init__()
        self.branches = nn.ModuleList(
            [
                ConvBNAct(in_channels, channels, 1),
                *(ConvBNAct(in_channels, channels, 3, dilation=rate) for rate in rates),
                ImagePooling(in_channels, channels),
            ]
        )
        self.project = ConvBNAct(channels * len(self.branches), channels, 1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        pyramid = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.dropout(self.project(pyramid))


def v3_rates(output_stride: int) -> tuple[int, ...]:
    """ASPP rates for ``output_stride``: (6, 12, 18) at 16, doubled at 8 (v3 §3.3)."""
    if output_stride not in (8, 16):
        raise CnnzooError(f"DeepLab v3 runs at output_stride 8 or 16, got {output_stride!r}")
    return tuple(rate * 16 // output_stride for rate in ASPP_V3_RATES)


class DeepLabV3(DeepLabModel):
    """Backbone at output stride 16 or 8 -> ASPP -> 3x3 conv + BN -> 1x1 scores -> bilinear.

    The 3x3 convolution before the classifier is torchvision's (the paper goes
    from the projection to the 1x1 classifier directly); it is kept so that
    torchvision's weights load. The optional auxiliary head reads the stage
    before the last, as torchvision's.
    """

    input_size = (3, 513, 513)  # the VOC training crops (v3 §4)

    def __init__(
        self,
        encoder: FeatureExtractor,
        num_classes: int,
        in_channels: int,
        output_stride: int,
        aux_head: bool,
    ) -> None:
        super().__init__(encoder, num_classes, in_channels)
        info = encoder.feature_info
        self.aspp = ASPP(info[-1].channels, v3_rates(output_stride))
        self.head = nn.Sequential(
            ConvBNAct(ASPP_CHANNELS, ASPP_CHANNELS, 3), nn.Conv2d(ASPP_CHANNELS, num_classes, 1)
        )
        self.aux = FCNHead(info[-2].channels, num_classes) if aux_head else None
        for part in (self.aspp, self.head, self.aux):
            if part is not None:
                init_weights(part)

    def segment(self, x: Tensor) -> SegmentationOutput:
        stages = self.encoder(x)
        logits = bilinear_resize(self.head(self.aspp(stages[-1])), x.shape[-2:])
        if self.aux is None or not self.training:
            return logits
        return logits, bilinear_resize(self.aux(stages[-2]), x.shape[-2:])


class DeepLabV3PlusDecoder(nn.Module):
    """v3+'s decoder (§3.1, Fig. 2): upsample the ASPP features to stride 4, concatenate
    the reduced low-level features (1x1 conv to 48), refine with two 3x3 convs, classify."""

    def __init__(self, low_level_channels: int, num_classes: int) -> None:
        super().__init__()
        self.reduce = ConvBNAct(low_level_channels, V3PLUS_LOW_LEVEL_CHANNELS, 1)
        self.refine = nn.Sequential(
            ConvBNAct(ASPP_CHANNELS + V3PLUS_LOW_LEVEL_CHANNELS, ASPP_CHANNELS, 3),
            ConvBNAct(ASPP_CHANNELS, ASPP_CHANNELS, 3),
        )
        self.classifier = nn.Conv2d(ASPP_CHANNELS, num_classes, 1)

    def forward(self, context: Tensor, low_level: Tensor) -> Tensor:
        context = bilinear_resize(context, low_level.shape[-2:])
        return self.classifier(self.refine(torch.cat([context, self.reduce(low_level)], dim=1)))


class DeepLabV3Plus(DeepLabModel):
    """Backbone (output stride 16 or 8) -> ASPP -> decoder with stride-4 features -> bilinear x4."""

    input_size = (3, 513, 513)  # the VOC training crops (v3+ §4)

    def __init__(
        self, encoder: FeatureExtractor, num_classes: int, in_channels: int, output_stride: int
    ) -> None:
        super().__init__(encoder, num_classes, in_channels)
        info = encoder.feature_info
        self.low_level_index = stage_index(info, 4)
        self.aspp = ASPP(info[-1].channels, v3_rates(output_stride))
        self.decoder = DeepLabV3PlusDecoder(info[self.low_level_index].channels, num_classes)
        init_weights(self.aspp)
        init_weights(self.decoder)

    def segment(self, x: Tensor) -> Tensor:
        stages = self.encoder(x)
        logits = self.decoder(self.aspp(stages[-1]), stages[self.low_level_index])
        return bilinear_resize(logits, x.shape[-2:])


@register_model(family="DeepLab", paper=PAPER_V1, task="segmentation")
def deeplab_v1_largefov(
    num_classes: int = 21, in_channels: int = 3, backbone: str = "vgg16"
) -> DeepLabV1:
    return DeepLabV1(create_encoder(backbone, in_channels, 8), num_classes, in_channels)


@register_model(family="DeepLab", paper=PAPER_V2, task="segmentation")
def deeplab_v2(
    num_classes: int = 21, in_channels: int = 3, backbone: str = "resnet101"
) -> DeepLabV2:
    encoder = create_encoder(backbone, in_channels, 8)
    return DeepLabV2(encoder, num_classes, in_channels, fully_connected=is_vgg(backbone))


@register_model(family="DeepLab", paper=PAPER_V3, task="segmentation")
def deeplab_v3(
    num_classes: int = 21,
    in_channels: int = 3,
    backbone: str = "resnet101",
    output_stride: int = 16,
    aux_head: bool = False,
) -> DeepLabV3:
    encoder = create_encoder(backbone, in_channels, output_stride)
    return DeepLabV3(encoder, num_classes, in_channels, output_stride, aux_head)


@register_model(family="DeepLab", paper=PAPER_V3PLUS, task="segmentation")
def deeplab_v3plus(
    num_classes: int = 21,
    in_channels: int = 3,
    backbone: str = "resnet101",
    output_stride: int = 16,
) -> DeepLabV3Plus:
    encoder = create_encoder(backbone, in_channels, output_stride)
    return DeepLabV3Plus(encoder, num_classes, in_channels, output_stride)
