"""SegNet: a decoder that upsamples with the encoder's max-pooling indices.

Badrinarayanan, Kendall, Cipolla, "SegNet: A Deep Convolutional
Encoder-Decoder Architecture for Image Segmentation", TPAMI 2017,
arXiv:1511.00561.

What the design solved: FCN learns its upsampling and keeps whole encoder
feature maps for its skips, which costs memory at inference; plain
upsampling blurs boundaries. SegNet's encoder remembers, for every 2x2
max-pooling window, *where* the maximum was (2 bits per window) and the
decoder puts each value back at exactly that position, zeros elsewhere
(max-unpooling, Fig. 3), then densifies the sparse map with trainable
convolutions. Boundaries stay sharp, nothing is learned for the upsampling,
and no encoder feature map has to be kept. Class imbalance (road and sky
against poles and signs) is handled by median frequency balancing, the
``--class-weights median-freq`` option of the training commands.

``segnet`` is the paper's network: the 13 convolutional layers of VGG-16
with batch normalisation as encoder and their mirror image as decoder, the
last decoder convolution giving the class scores (29,449,355 parameters for
CamVid's 11 classes). ``segnet_basic`` is the smaller network of the paper's
analysis (§4.1): four encoders of one 7x7 convolution with 64 channels, four
decoders likewise, no biases and no ReLU in the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.vgg import VGG_CONFIGS
from cnnzoo.models.registry import register_model
from cnnzoo.models.segmentation.base import SegmentationModel, init_weights

PAPER = "Badrinarayanan, Kendall, Cipolla 2015, SegNet, arXiv:1511.00561"


@dataclass(frozen=True)
class SegNetConfig:
    """One SegNet variant; the decoder is always the encoder's mirror image."""

    stages: tuple[tuple[int, ...], ...]  # output channels of each encoder conv, per max-pooling
    kernel_size: int  # 3 (VGG-16) or 7 (SegNet-Basic: "a wide context for smooth labelling")
    bias: bool  # SegNet-Basic: "no biases are used after convolutions" (§4.1)
    decoder_relu: bool  # SegNet-Basic: "no ReLU non-linearity is present in the decoder"
    # Kernel of a separate classifier after the decoder; None: the last decoder conv classifies.
    classifier_kernel: int | None
    # The classifier whose convolutions the encoder repeats, so its ImageNet weights fit (§3).
    backbone: str | None = None


def _vgg_stages(config: list[int | str]) -> tuple[tuple[int, ...], ...]:
    """Split a VGG configuration list at its max-pools: the convolutions of each stage."""
    stages, current = [], []
    for value in config:
        if value == "M":
            stages.append(tuple(current))
            current = []
        else:
            current.append(int(value))
    return tuple(stages)


SEGNET_CONFIGS = {
    # SegNet's decoder needs the encoder's max-pooling indices, which the classifiers'
    # feature interface does not return; so the encoder is built here, from VGG-16's
    # configuration (Simonyan & Zisserman Table 1, column D), not taken from the registry.
    "segnet": SegNetConfig(_vgg_stages(VGG_CONFIGS["D"]), 3, True, True, None, "vgg16_bn"),
    "segnet_basic": SegNetConfig(((64,), (64,), (64,), (64,)), 7, False, False, 1),
}


def conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, bias: bool, relu: bool
) -> nn.Sequential:
    """Convolution ("same" padding) -> batch norm -> optional ReLU."""
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class EncoderStage(nn.Module):
    """Convolutions, then 2x2 max-pooling that also returns where each maximum was."""

    def __init__(self, convs: Sequence[nn.Module]) -> None:
        super().__init__()
        self.convs = nn.Sequential(*convs)
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Pooled map, the flat index (within its H x W map) of each maximum, pre-pool size."""
        x = self.convs(x)
        pooled, indices = self.pool(x)
        return pooled, indices, (x.shape[-2], x.shape[-1])


class DecoderStage(nn.Module):
    """Max-unpooling at the encoder's indices (zeros elsewhere), then convolutions (Fig. 3)."""

    def __init__(self, convs: Sequence[nn.Module]) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.convs = nn.Sequential(*convs)

    def forward(self, x: Tensor, indices: Tensor, size: tuple[int, int]) -> Tensor:
        # output_size restores the row/column an odd-sized map lost to pooling.
        return self.convs(self.unpool(x, indices, output_size=size))


class SegNet(SegmentationModel):
    """Encoder stages -> mirror decoder stages (deepest first) -> optional classifier."""

    input_size = (3, 360, 480)  # CamVid road scenes (§4)

    def __init__(self, config: SegNetConfig, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        k, bias = config.kernel_size, config.bias
        # (in, out) channels of every encoder convolution, stage by stage.
        pairs, channels = [], in_channels
        for widths in config.stages:
            pairs.append([(c_in, c_out) for c_in, c_out in zip([channels, *widths], widths)])
            channels = widths[-1]
        self.encoder = nn.ModuleList(
            EncoderStage([conv_bn(c_in, c_out, k, bias, relu=True) for c_in, c_out in stage])
            for stage in pairs
        )
        decoder = []
        for depth, stage in enumerate(reversed(pairs)):
            # The mirror: the reversed convolutions with in and out swapped.
            mirrored = [(c_out, c_in) for c_in, c_out in reversed(stage)]
            convs = [conv_bn(c_in, c_out, k, bias, config.decoder_relu) for c_in, c_out in mirrored]
            if depth == len(pairs) - 1:
                # The first encoder conv read the image; its mirror writes features or scores.
                last_in = mirrored[-1][0]
                if config.classifier_kernel is None:
                    convs[-1] = nn.Conv2d(last_in, num_classes, k, padding=k // 2)
                else:
                    width = config.stages[0][0]
                    convs[-1] = conv_bn(last_in, width, k, bias, config.decoder_relu)
            decoder.append(DecoderStage(convs))
        self.decoder = nn.ModuleList(decoder)
        self.classifier: nn.Module = nn.Identity()
        if config.classifier_kernel is not None:
            kernel = config.classifier_kernel
            self.classifier = nn.Conv2d(
                config.stages[0][0], num_classes, kernel, padding=kernel // 2
            )
        self.encoder_backbone = config.backbone
        # Every pooling halves the map: the network needs at least 2^stages pixels.
        self.min_segment_size = 2 ** len(config.stages)
        init_weights(self)

    @property
    def backbone(self) -> str | None:
        """VGG-16-BN for the paper's SegNet, whose encoder is its 13 convolutions (§3)."""
        return self.encoder_backbone

    def segment(self, x: Tensor) -> Tensor:
        remembered = []
        for stage in self.encoder:
            x, indices, size = stage(x)
            remembered.append((indices, size))
        for stage, (indices, size) in zip(self.decoder, reversed(remembered)):
            x = stage(x, indices, size)
        return self.classifier(x)


@register_model(family="SegNet", paper=PAPER, task="segmentation")
def segnet(num_classes: int = 11, in_channels: int = 3) -> SegNet:
    return SegNet(SEGNET_CONFIGS["segnet"], num_classes, in_channels)


@register_model(family="SegNet", paper=PAPER, task="segmentation")
def segnet_basic(num_classes: int = 11, in_channels: int = 3, width: int = 64) -> SegNet:
    """``width`` other than the paper's 64 channels scales every layer (for small machines)."""
    if not isinstance(width, int) or width < 1:
        raise CnnzooError(f"width must be a positive integer (64 in the paper), got {width!r}")
    config = SEGNET_CONFIGS["segnet_basic"]
    return SegNet(
        replace(config, stages=((width,),) * len(config.stages)), num_classes, in_channels
    )
