"""U-Net: a contracting path for context, a symmetric expanding path for localisation.

Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv:1505.04597.

What the design solved: FCN's decoder is a few upsampling layers, so its masks
are coarse, and biomedical data sets have tens of images, not thousands. U-Net
makes the expanding path as deep as the contracting one: at every level it
up-convolves, concatenates the encoder's map of that level (fine detail, the
"skip connection") and convolves twice, so precise localisation and context
meet at every resolution. Heavy augmentation and a weight map that stresses
the thin borders between touching cells
(:func:`cnnzoo.evaluation.losses.border_weight_map`, a loss's input) made it
train from 30 images.

The paper's network uses unpadded ("valid") convolutions, so a 572x572 tile
gives a 388x388 map of its centre (Fig. 1) and a whole image is segmented by
mirroring context around it (the overlap-tile strategy, Fig. 2).
``padding="same"`` (the default here) keeps every map at its level's size.
``backbone=`` puts the same expanding path on any classifier's stages.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import FeatureInfo
from cnnzoo.models.registry import register_model
from cnnzoo.models.segmentation.base import (
    SegmentationModel,
    create_encoder,
    crop,
    init_weights,
    stage_index,
)

PAPER = "Ronneberger, Fischer, Brox 2015, U-Net, arXiv:1505.04597"

PADDINGS = ("same", "valid")
DEPTH = 4  # max-poolings in the contracting path (Fig. 1): levels of 64, 128, 256, 512, 1024


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by a ReLU (and batch norm before it if asked).

    One level of either path (§2). With ``padding=0`` each convolution loses a
    pixel at every border, as in the paper.
    """

    def __init__(self, in_channels: int, out_channels: int, padding: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = []
        for index in range(2):
            conv_in = in_channels if index == 0 else out_channels
            layers.append(nn.Conv2d(conv_in, out_channels, 3, padding=padding, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ContractingPath(nn.Module):
    """The paper's encoder: DoubleConv levels of width, 2x width, ... separated by 2x2 max-pools.

    Returns every level's map (finest first) and describes them in
    ``feature_info``, the same interface a registry backbone offers.
    """

    def __init__(
        self, in_channels: int, width: int, padding: int, batch_norm: bool, dropout: float
    ) -> None:
        super().__init__()
        widths = [width * 2**level for level in range(DEPTH + 1)]
        self.levels = nn.ModuleList(
            DoubleConv(c_in, c_out, padding, batch_norm)
            for c_in, c_out in zip([in_channels, *widths[:-1]], widths)
        )
        self.pool = nn.MaxPool2d(2, 2)
        # "Drop-out layers at the end of the contracting path" (§3.1): the two deepest levels.
        self.dropout = nn.Dropout(dropout)
        self.feature_info = [
            FeatureInfo(f"levels.{level}", channels, 2**level)
            for level, channels in enumerate(widths)
        ]

    def forward(self, x: Tensor) -> list[Tensor]:
        maps = []
        for level, convs in enumerate(self.levels):
            if level:
                x = self.pool(x)
            x = convs(x)
            if level >= DEPTH - 1:
                x = self.dropout(x)
            maps.append(x)
        return maps


class UpLevel(nn.Module):
    """One step of the expanding path: up-convolution, concatenation, two 3x3 convolutions.

    The "up-convolution" is a ``scale`` x ``scale`` transposed convolution at
    stride ``scale`` (2x2 in the paper) mapping to ``out_channels``; the
    encoder map (``skip_channels``, 0 for none) is centre-cropped to its size,
    "necessary due to the loss of border pixels in every convolution" (§2).
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        padding: int,
        batch_norm: bool,
        scale: int = 2,
    ) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, scale, stride=scale)
        self.convs = DoubleConv(out_channels + skip_channels, out_channels, padding, batch_norm)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1)
        return self.convs(x)


def center_crop(x: Tensor, size: Sequence[int]) -> Tensor:
    """The centre ``size`` window of ``x``."""
    height, width = size
    return crop(x, (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2, height, width)


class ExpandingPath(nn.Module):
    """The decoder: from the coarsest map up to the input's resolution, one UpLevel per stride.

    Each level joins the encoder map of its stride and keeps that map's channel
    count, as the paper's levels do (1024 -> 512 + 512 -> 512). If the finest
    encoder map is coarser than the input (a backbone's stem has stride 2),
    the last levels upsample without a skip, halving the channels.
    """

    def __init__(self, feature_info: Sequence[FeatureInfo], padding: int, batch_norm: bool) -> None:
        super().__init__()
        strides = sorted({info.stride for info in feature_info}, reverse=True)
        self.skip_indices = [stage_index(feature_info, s) for s in strides[1:]]
        channels = feature_info[stage_index(feature_info, strides[0])].channels
        self.bottom_index = stage_index(feature_info, strides[0])
        levels = []
        for index, (stride, finer) in enumerate(zip(strides, strides[1:])):
            skip = feature_info[self.skip_indices[index]].channels
            levels.append(UpLevel(channels, skip, skip, padding, batch_norm, stride // finer))
            channels = skip
        stride = strides[-1]
        while stride > 1:
            levels.append(UpLevel(channels, 0, max(channels // 2, 1), padding, batch_norm))
            channels, stride = max(channels // 2, 1), stride // 2
        self.levels = nn.ModuleList(levels)
        self.out_channels = channels

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        x = maps[self.bottom_index]
        for level, up in enumerate(self.levels):
            skip = maps[self.skip_indices[level]] if level < len(self.skip_indices) else None
            x = up(x, skip)
        return x


class UNet(SegmentationModel):
    """Encoder (the paper's contracting path or a backbone) -> expanding path -> 1x1 classifier.

    Args:
        encoder: returns a list of feature maps described by its ``feature_info``.
        num_classes: output channels of the final 1x1 convolution.
        in_channels: channels of the input images.
        padding: "same" or "valid" (the paper's unpadded convolutions).
        batch_norm: batch norm after every convolution of the expanding path
            (and of the paper's contracting path).
    """

    input_size = (1, 572, 572)  # the grey 572x572 input tile of the paper's Fig. 1

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        in_channels: int,
        padding: str = "same",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_channels, self.padding = num_classes, in_channels, padding
        conv_padding = 1 if padding == "same" else 0
        self.encoder = encoder
        self.decoder = ExpandingPath(encoder.feature_info, conv_padding, batch_norm)
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)
        init_weights(self.decoder)
        init_weights(self.head)
        self.size_divisor = max(info.stride for info in encoder.feature_info)
        self.min_segment_size = max(getattr(encoder, "min_input_size", 1), self.size_divisor)
        if padding == "valid":
            # Each level loses 4 pixels; the smallest tile whose every pooled map is even
            # ends at a 4x4 map (16 * 0 + 188 -> 4), and tiles grow in steps of 16.
            self.border = valid_border()
            self.min_segment_size = 2 * self.border + 4

    def segment(self, x: Tensor) -> Tensor:
        if self.padding == "valid":
            check_valid_tile(x)
        return self.head(self.decoder(self.encoder(x)))


def valid_border() -> int:
    """Pixels lost at each side of a "valid" U-Net: 572 -> 388 loses 92 (Fig. 1).

    Going down, level l's two convolutions lose 2 pixels per side at scale 2^l
    (l = 0..4); going up, level l's lose 2 at scale 2^l (l = 3..0).
    """
    down = sum(2 * 2**level for level in range(DEPTH + 1))
    up = sum(2 * 2**level for level in range(DEPTH))
    return down + up


def check_valid_tile(x: Tensor) -> None:
    """A "valid" U-Net tile must give even maps before every max-pool (§2): 188 + 16k."""
    smallest = 2 * valid_border() + 4
    for side in x.shape[-2:]:
        if side < smallest or (side - smallest) % 2**DEPTH:
            below = smallest + max(0, (side - smallest) // 2**DEPTH) * 2**DEPTH
            raise CnnzooError(
                f"a U-Net with padding='valid' needs tiles of {smallest} + 16k pixels "
                f"(e.g. 572) so that every 2x2 max-pooling sees an even size, got {side}; "
                f"use {below if below >= smallest else smallest} or {below + 16}, or call the "
                "model itself, which mirrors the borders for any size"
            )


def _unet(
    num_classes: int,
    in_channels: int,
    backbone: str | None,
    padding: str,
    batch_norm: bool | None,
    width: int,
    dropout: float,
) -> UNet:
    if padding not in PADDINGS:
        raise CnnzooError(f"padding must be 'same' or 'valid', got {padding!r}")
    if backbone is None:
        if not isinstance(width, int) or width < 1:
            raise CnnzooError(f"width must be a positive integer (64 in the paper), got {width!r}")
        conv_padding = 1 if padding == "same" else 0
        encoder = ContractingPath(in_channels, width, conv_padding, bool(batch_norm), dropout)
        init_weights(encoder)
        return UNet(encoder, num_classes, in_channels, padding, bool(batch_norm))
    if padding != "same":
        raise CnnzooError(
            "a U-Net on a backbone needs padding='same': backbones pad their convolutions"
        )
    encoder = create_encoder(backbone, in_channels)
    # A backbone's stages are batch-normalised; its decoder is too unless asked otherwise.
    return UNet(encoder, num_classes, in_channels, padding, batch_norm is None or batch_norm)


@register_model(family="U-Net", paper=PAPER, task="segmentation")
def unet(
    num_classes: int = 2,
    in_channels: int = 1,
    backbone: str | None = None,
    padding: str = "same",
    batch_norm: bool | None = None,
    width: int = 64,
    dropout: float = 0.5,
) -> UNet:
    """The paper's U-Net (``width`` 64 -> 1024 channels), or its decoder on ``backbone``.

    ``batch_norm`` None means the paper's plain convolutions without a
    backbone and batch norm with one; ``width`` and ``dropout`` apply to the
    paper's contracting path.
    """
    return _unet(num_classes, in_channels, backbone, padding, batch_norm, width, dropout)
