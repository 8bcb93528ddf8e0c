"""FCN: a classifier turned into a pixel classifier, with skips that fuse coarse and fine.

Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015, arXiv:1411.4038.

What the design solved: a classifier's fully connected layers fix the input
size and throw away where things are. FCN recasts them as convolutions (fc6 a
7x7 convolution over pool5, fc7 a 1x1, §3.1), so the network slides over an
image of any size and outputs a coarse map of class scores, which in-network
upsampling (a transposed convolution initialised to bilinear interpolation and
learned, §3.3) brings back to the input's resolution. Stride 32 is too coarse
for boundaries, so FCN-16s adds scores predicted from pool4 (stride 16) to the
2x upsampled scores, and FCN-8s also those from pool3 (stride 8): deep, coarse,
semantic information fused with shallow, fine, appearance information (§4.2).

On VGG-16 the network follows the reference implementation
(fcn.berkeleyvision.org, ``voc-fcn*s/net.py``): the input (first padded to a
multiple of 32) is padded by 100 pixels so that the unpadded 7x7 fc6 works on
any image, the transposed convolutions have no padding, and each fused map is
aligned by cropping it at the offset given by the layers' coordinate maps (5
for pool4, 9 for pool3; 19, 27 or 31 for the final map). On any other backbone the score
layers read its stages at strides 32, 16 and 8; the input is padded to a multiple of 32 and the
upsampling is padded so that every map is exactly twice the size of the last.

``fcn_dilated`` is torchvision's ``fcn_resnet50`` design (not the paper's): a
backbone at output stride 8 (dilated, as in DeepLab), a 3x3 convolution head and
bilinear upsampling; ``cnnzoo.models.weights.torchvision.fcn`` loads its state dicts.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.models.classification.base import FeatureExtractor
from cnnzoo.models.layers.conv_bn_act import ConvBNAct
from cnnzoo.models.registry import get_model_entry, register_model
from cnnzoo.models.segmentation.base import (
    SegmentationModel,
    SegmentationOutput,
    bilinear_kernel,
    bilinear_resize,
    create_encoder,
    crop,
    init_weights,
    stage_index,
)

PAPER = "Long, Shelhamer, Darrell 2015, Fully Convolutional Networks, arXiv:1411.4038"

# Strides of the stages whose scores are fused, after the coarsest (§4.2).
SKIP_STRIDES = {"fcn32s": (), "fcn16s": (16,), "fcn8s": (16, 8)}

# The reference implementation's alignment on VGG-16 (conv1_1 padded by 100): where the
# pool4 and pool3 scores are cropped, and where the final map is, by its upsampling factor.
REFERENCE_INPUT_PADDING = 100
REFERENCE_SKIP_OFFSETS = (5, 9)
REFERENCE_FINAL_OFFSETS = {32: 19, 16: 27, 8: 31}


def bilinear_upsampler(channels: int, factor: int, padded: bool) -> nn.ConvTranspose2d:
    """A learnable ``factor``x upsampling of score maps, initialised to bilinear interpolation.

    Kernel 2 * factor at stride ``factor`` (§3.3). ``padded`` (factor / 2 on each
    side) makes the output exactly ``factor`` times the input and equal to
    ``F.interpolate(mode="bilinear", align_corners=False)`` away from the border;
    unpadded, as in the reference implementation, the map is larger and is
    aligned by cropping.
    """
    upsample = nn.ConvTranspose2d(
        channels,
        channels,
        kernel_size=2 * factor,
        stride=factor,
        padding=factor // 2 if padded else 0,
        bias=False,
    )
    upsample.weight.data.copy_(bilinear_kernel(channels, 2 * factor))
    return upsample


def fully_connected_as_convolutions(in_channels: int, dropout: float = 0.5) -> nn.Sequential:
    """VGG's fc6 and fc7 recast as convolutions: 7x7 over pool5, then 1x1 (§3.1).

    4096 channels each, ReLU and dropout as in the classifier they replace.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 4096, 7),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Conv2d(4096, 4096, 1),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


class FCN(SegmentationModel):
    """Encoder -> (fc6, fc7) -> class scores -> upsample and fuse with skip scores -> upsample.

    Args:
        encoder: a feature extractor at output stride 32.
        skip_strides: strides of the stages fused after the coarsest, e.g. (16, 8).
        num_classes: score channels.
        in_channels: channels of the input images.
        reference_geometry: the VGG-16 reference implementation's layout (fc6/fc7,
            100-pixel input padding, unpadded upsampling, crop offsets).
    """

    input_size = (3, 500, 500)  # PASCAL VOC images are at most 500x500 (§4.3)

    def __init__(
        self,
        encoder: FeatureExtractor,
        skip_strides: tuple[int, ...],
        num_classes: int,
        in_channels: int,
        reference_geometry: bool,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        info = encoder.feature_info
        coarsest = max(i.stride for i in info)
        self.last_index = stage_index(info, coarsest)
        self.skip_indices = [stage_index(info, stride) for stride in skip_strides]
        self.encoder = encoder
        channels = info[self.last_index].channels
        self.fully_connected: nn.Module = nn.Identity()
        if reference_geometry:
            self.fully_connected = fully_connected_as_convolutions(channels)
            channels = 4096
        # "score_fr" and "score_pool4/3": 1x1 convolutions predicting class scores, zero at
        # first so fusion starts from the coarser net's predictions (§4.2, §4.3).
        self.score = nn.Conv2d(channels, num_classes, 1)
        self.skip_scores = nn.ModuleList(
            nn.Conv2d(info[i].channels, num_classes, 1) for i in self.skip_indices
        )
        strides = [coarsest, *skip_strides]
        padded = not reference_geometry
        self.fuse_upsamples = nn.ModuleList(
            bilinear_upsampler(num_classes, coarse // fine, padded)
            for coarse, fine in zip(strides, strides[1:])
        )
        self.final_upsample = bilinear_upsampler(num_classes, strides[-1], padded)
        init_weights(self.fully_connected)
        for score in (self.score, *self.skip_scores):
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        self.size_divisor = coarsest
        self.min_segment_size = max(encoder.min_input_size, coarsest)
        self.input_padding, self.skip_offsets, self.final_offset = 0, (0, 0), 0
        if reference_geometry:
            # Caffe's pools round up, ours (torchvision's) round down, which can leave a map
            # a pixel short of its crop; inputs padded to a multiple of 32 always leave room.
            self.input_padding = REFERENCE_INPUT_PADDING - 1  # conv1_1 pads the last pixel
            self.skip_offsets = REFERENCE_SKIP_OFFSETS[: len(skip_strides)]
            self.final_offset = REFERENCE_FINAL_OFFSETS[strides[-1]]

    def segment(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if self.input_padding:
            x = F.pad(x, (self.input_padding,) * 4)
        stages = self.encoder(x)
        scores = self.score(self.fully_connected(stages[self.last_index]))
        for upsample, skip_score, index, offset in zip(
            self.fuse_upsamples, self.skip_scores, self.skip_indices, self.skip_offsets
        ):
            scores = upsample(scores)
            skip = skip_score(stages[index])
            scores = scores + crop(skip, offset, offset, *scores.shape[-2:])
        scores = self.final_upsample(scores)
        return crop(scores, self.final_offset, self.final_offset, height, width)


class FCNHead(nn.Sequential):
    """torchvision's FCN head: 3x3 conv to a quarter of the channels, BN, ReLU, dropout, 1x1."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        inner = in_channels // 4
        super().__init__(
            ConvBNAct(in_channels, inner, 3), nn.Dropout(0.1), nn.Conv2d(inner, num_classes, 1)
        )


class DilatedFCN(SegmentationModel):
    """torchvision's FCN: dilated backbone -> FCNHead -> bilinear upsampling (+ auxiliary head).

    The auxiliary head reads the stage before the last (ResNet's layer3), as in
    torchvision; in training mode its logits follow the main ones.
    """

    input_size = (3, 500, 500)  # PASCAL VOC, as FCN

    def __init__(
        self, encoder: FeatureExtractor, num_classes: int, in_channels: int, aux_head: bool
    ) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        info = encoder.feature_info
        self.encoder = encoder
        self.head = FCNHead(info[-1].channels, num_classes)
        self.aux = FCNHead(info[-2].channels, num_classes) if aux_head else None
        init_weights(self.head)
        if self.aux is not None:
            init_weights(self.aux)
        self.size_divisor = max(i.stride for i in info)
        self.min_segment_size = max(encoder.min_input_size, self.size_divisor)

    def segment(self, x: Tensor) -> SegmentationOutput:
        stages = self.encoder(x)
        logits = bilinear_resize(self.head(stages[-1]), x.shape[-2:])
        if self.aux is None or not self.training:
            return logits
        return logits, bilinear_resize(self.aux(stages[-2]), x.shape[-2:])


def _fcn(variant: str, num_classes: int, in_channels: int, backbone: str) -> FCN:
    encoder = create_encoder(backbone, in_channels)
    reference = get_model_entry(backbone).family == "VGG"
    return FCN(encoder, SKIP_STRIDES[variant], num_classes, in_channels, reference)


@register_model(family="FCN", paper=PAPER, task="segmentation")
def fcn32s(num_classes: int = 21, in_channels: int = 3, backbone: str = "vgg16") -> FCN:
    return _fcn("fcn32s", num_classes, in_channels, backbone)


@register_model(family="FCN", paper=PAPER, task="segmentation")
def fcn16s(num_classes: int = 21, in_channels: int = 3, backbone: str = "vgg16") -> FCN:
    return _fcn("fcn16s", num_classes, in_channels, backbone)


@register_model(family="FCN", paper=PAPER, task="segmentation")
def fcn8s(num_classes: int = 21, in_channels: int = 3, backbone: str = "vgg16") -> FCN:
    return _fcn("fcn8s", num_classes, in_channels, backbone)


@register_model(family="FCN", paper=PAPER, task="segmentation")
def fcn_dilated(
    num_classes: int = 21,
    in_channels: int = 3,
    backbone: str = "resnet50",
    output_stride: int = 8,
    aux_head: bool = False,
) -> DilatedFCN:
    encoder = create_encoder(backbone, in_channels, output_stride)
    return DilatedFCN(encoder, num_classes, in_channels, aux_head)
