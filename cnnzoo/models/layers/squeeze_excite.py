"""Squeeze-and-Excitation: channel attention that reweights a feature map.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.

What it solved: a convolution mixes channels only locally, so a network has no
cheap way to let global context decide which channels matter for *this* image.
SE squeezes each channel of a W x H x D map to one number, passes the D numbers
through a small bottleneck (excitation, reduction r = 16), and multiplies every
channel of the map by its sigmoid weight -- an element-wise product, not a
matrix product. The block plugs into any residual or inverted-residual block.

The squeeze is a global average in the paper (``squeeze="avg"``). The survey
cnnzoo follows describes it instead as a convolution whose kernel covers the
whole W x H map, i.e. one *learned* spatial weighting per channel:
``squeeze="conv"`` implements that so the two can be compared. Its kernel is
sized for ``spatial_size`` and resampled bilinearly when the map differs, so
the block still accepts any input size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SqueezeExcite(nn.Module):
    """SE block: squeeze (global pooling) -> excitation (bottleneck) -> channel rescaling.

    Args:
        channels: channels D of the map being rescaled.
        squeeze_channels: width of the bottleneck (D / r in the paper).
        activation: non-linearity inside the bottleneck (ReLU in SENet, SiLU in EfficientNet).
        gate: squashes the excitation into per-channel weights (sigmoid).
        squeeze: "avg" (paper: global average pooling) or "conv" (learned
            whole-map depthwise kernel, as the survey describes it).
        spatial_size: the map's H x W at the model's nominal input, needed by "conv".
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        activation: Callable[..., nn.Module] = nn.ReLU,
        gate: Callable[..., nn.Module] = nn.Sigmoid,
        squeeze: str = "avg",
        spatial_size: int | tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if squeeze not in ("avg", "conv"):
            raise ValueError(f"squeeze must be 'avg' or 'conv', not {squeeze!r}")
        self.squeeze_mode = squeeze
        if squeeze == "conv":
            if spatial_size is None:
                raise ValueError("squeeze='conv' needs the feature map's spatial_size")
            height, width = (
                (spatial_size, spatial_size) if isinstance(spatial_size, int) else spatial_size
            )
            # Starts as an average (uniform weights), then learns where to look.
            self.squeeze_weight = nn.Parameter(
                torch.full((channels, 1, height, width), 1.0 / (height * width))
            )
        # 1x1 convolutions on the 1x1 squeezed map are the paper's two FC layers.
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.activation = activation()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate()

    def squeeze(self, x: Tensor) -> Tensor:
        """Summarise each channel of ``x`` (N, D, H, W) by one number: (N, D, 1, 1)."""
        if self.squeeze_mode == "avg":
            return F.adaptive_avg_pool2d(x, 1)
        weight = self.squeeze_weight
        if weight.shape[-2:] != x.shape[-2:]:
            # Resample the learned map, keeping its total mass so the scale is unchanged.
            area = weight.shape[-2] * weight.shape[-1]
            weight = F.interpolate(weight, size=x.shape[-2:], mode="bilinear", align_corners=False)
            weight = weight * (area / (x.shape[-2] * x.shape[-1]))
        return F.conv2d(x, weight, groups=x.shape[1])

    def excitation(self, squeezed: Tensor) -> Tensor:
        """Per-channel weights in (0, 1) from the squeezed descriptor."""
        return self.gate(self.fc2(self.activation(self.fc1(squeezed))))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.excitation(self.squeeze(x))
