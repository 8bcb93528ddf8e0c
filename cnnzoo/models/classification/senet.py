"""SE-ResNet: residual networks with squeeze-and-excitation channel attention.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507
(``se_resnet50``; CIFAR ``se_resnet20/32/44/56/110`` as in the paper's section 6.1).

What the design solved: a convolution sees only a local window, so nothing in
a ResNet lets the whole image decide which channels matter. The SE block
(:class:`cnnzoo.models.layers.SqueezeExcite`) squeezes every channel of a block's
residual map to one number, passes them through a bottleneck of ``channels //
reduction`` units (reduction 16) and rescales each channel by its sigmoid
weight. It sits on the residual branch, before the addition with the shortcut
(paper Fig. 3), so the identity path stays untouched; for ResNet-50 it adds
about 10% parameters (25.6M -> 28.1M) and under 1% computation.

``squeeze="avg"`` is the paper's global average pooling; ``squeeze="conv"``
learns one whole-map kernel per channel, as the survey describes the squeeze,
sized for each block's map at the nominal input (224 for ``se_resnet50``, 32 for
CIFAR) and resampled for other inputs.
"""

from __future__ import annotations

import functools

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.resnet import AttentionFactory, Bottleneck, ResNet
from cnnzoo.models.classification.resnet_cifar import CifarResNet
from cnnzoo.models.layers import SqueezeExcite
from cnnzoo.models.registry import register_model

PAPER = "Hu et al. 2017, Squeeze-and-Excitation Networks, arXiv:1709.01507"


def se_block(
    channels: int, spatial_size: int | None = None, *, reduction: int = 16, squeeze: str = "avg"
) -> SqueezeExcite:
    """The SE block of one residual branch with ``channels`` channels.

    The bottleneck keeps at least one unit: a 16-channel CIFAR stage at
    reduction 16 gets 1, at reduction 32 still 1 (``max(1, channels // reduction)``).
    """
    squeeze_channels = max(1, channels // reduction)
    return SqueezeExcite(channels, squeeze_channels, squeeze=squeeze, spatial_size=spatial_size)


def se_attention(reduction: int = 16, squeeze: str = "avg") -> AttentionFactory:
    """An attention factory that puts an SE block into every ResNet block."""
    if squeeze not in ("avg", "conv"):
        raise CnnzooError(
            f"squeeze must be 'avg' (global average, the paper) or 'conv' (learned "
            f"whole-map kernel), got {squeeze!r}"
        )
    if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
        raise CnnzooError(
            f"reduction must be a positive integer (16 in the paper), got {reduction!r}"
        )
    return functools.partial(se_block, reduction=reduction, squeeze=squeeze)


@register_model(family="SENet", paper=PAPER)
def se_resnet50(
    num_classes: int = 1000,
    in_channels: int = 3,
    reduction: int = 16,
    squeeze: str = "avg",
    output_stride: int = 32,
) -> ResNet:
    attention = se_attention(reduction, squeeze)
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, output_stride, attention)


@register_model(family="SENet (CIFAR)", paper=PAPER)
def se_resnet20(
    num_classes: int = 10, in_channels: int = 3, reduction: int = 16, squeeze: str = "avg"
) -> CifarResNet:
    return CifarResNet(20, num_classes, in_channels, attention=se_attention(reduction, squeeze))


@register_model(family="SENet (CIFAR)", paper=PAPER)
def se_resnet32(
    num_classes: int = 10, in_channels: int = 3, reduction: int = 16, squeeze: str = "avg"
) -> CifarResNet:
    return CifarResNet(32, num_classes, in_channels, attention=se_attention(reduction, squeeze))


@register_model(family="SENet (CIFAR)", paper=PAPER)
def se_resnet44(
    num_classes: int = 10, in_channels: int = 3, reduction: int = 16, squeeze: str = "avg"
) -> CifarResNet:
    return CifarResNet(44, num_classes, in_channels, attention=se_attention(reduction, squeeze))


@register_model(family="SENet (CIFAR)", paper=PAPER)
def se_resnet56(
    num_classes: int = 10, in_channels: int = 3, reduction: int = 16, squeeze: str = "avg"
) -> CifarResNet:
    return CifarResNet(56, num_classes, in_channels, attention=se_attention(reduction, squeeze))


@register_model(family="SENet (CIFAR)", paper=PAPER)
def se_resnet110(
    num_classes: int = 10, in_channels: int = 3, reduction: int = 16, squeeze: str = "avg"
) -> CifarResNet:
    return CifarResNet(110, num_classes, in_channels, attention=se_attention(reduction, squeeze))
