"""Convolution -> batch normalisation -> activation, and the channel rounding of mobile nets.

Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", 2015, arXiv:1502.03167.

What it solved: normalising every convolution's output keeps the scale of the
activations stable as depth grows, so deep networks train with large learning
rates. The convolution carries no bias because the normalisation's shift
replaces it. MobileNet v1/v2 and EfficientNet build every layer from this unit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn


class ConvBNAct(nn.Sequential):
    """``conv`` (no bias, "same" padding) -> ``bn`` -> ``act`` (none if ``activation`` is None).

    ``groups=channels`` makes the convolution depthwise (one filter per
    channel); ``dilation`` widens the kernel's view without adding weights.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: Callable[..., nn.Module] | None = nn.ReLU,  # a module class taking inplace=
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
    ) -> None:
        # Keeps H x W at stride 1 for any odd kernel and dilation.
        padding = (kernel_size - 1) // 2 * dilation
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            bn=norm_layer(out_channels),
        )
        if activation is not None:
            # In place, as torchvision's Conv2dNormActivation: batch norm's backward does not
            # need its output, so overwriting it saves one tensor's memory traffic per layer.
            layers["act"] = activation(inplace=True)
        super().__init__(layers)
        self.out_channels = out_channels


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never losing over 10%.

    Width multipliers (MobileNet v2, EfficientNet) give fractional channel
    counts; the reference TensorFlow code (tensorflow/models, slim/nets/mobilenet)
    rounds them to multiples of 8 for efficient kernels, and torchvision's
    weights depend on exactly this rounding.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
