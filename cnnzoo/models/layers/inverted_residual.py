"""The inverted residual block with linear bottleneck (MobileNet v2), and its MBConv form.

Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018, arXiv:1801.04381.

What it solved: a depthwise separable convolution is cheap, but working on few
channels starves its ReLUs of information. The block *expands* the thin input
with a 1x1 convolution (expansion ratio t), filters the wide tensor with a
cheap depthwise k x k convolution, and *projects* it back to few channels with
a 1x1 convolution that has no activation (the linear bottleneck: a ReLU in a
low-dimensional space would destroy information). The shortcut joins the thin
tensors -- the inverse of ResNet's bottleneck, hence the name. Tan & Le's
MBConv (EfficientNet) is this block with squeeze-and-excitation after the
depthwise convolution and stochastic depth on the residual branch.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from cnnzoo.models.layers.conv_bn_act import ConvBNAct
from cnnzoo.models.layers.stochastic_depth import StochasticDepth


class InvertedResidual(nn.Module):
    """expand (1x1) -> depthwise (k x k) -> [SE] -> project (1x1, linear) [+ input].

    Args:
        in_channels: channels of the thin input.
        out_channels: channels of the thin output.
        expanded_channels: width of the expanded tensor (t x in_channels, rounded by
            the caller); equal to ``in_channels`` means no expansion layer.
        kernel_size: the depthwise kernel (3 in MobileNet v2, 3 or 5 in EfficientNet).
        stride: the depthwise stride, 1 or 2.
        dilation: the depthwise dilation (atrous backbones keep resolution with it).
        activation: ReLU6 (MobileNet v2) or SiLU/swish (EfficientNet).
        se: a channel-attention module on the expanded tensor, e.g.
            :class:`~cnnzoo.models.layers.SqueezeExcite`; None for none.
        drop_path_rate: stochastic-depth probability of dropping the residual branch.
        norm_layer: the batch normalisation (its eps and momentum differ between
            reference implementations).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expanded_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        activation: Callable[..., nn.Module] = nn.ReLU6,
        se: nn.Module | None = None,
        drop_path_rate: float = 0.0,
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        # The shortcut needs an input and an output of the same shape.
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = (
            ConvBNAct(
                in_channels, expanded_channels, 1, activation=activation, norm_layer=norm_layer
            )
            if expanded_channels != in_channels
            else nn.Identity()
        )
        self.depthwise = ConvBNAct(
            expanded_channels,
            expanded_channels,
            kernel_size,
            stride=stride,
            groups=expanded_channels,
            dilation=dilation,
            activation=activation,
            norm_layer=norm_layer,
        )
        self.se = se if se is not None else nn.Identity()
        # Linear bottleneck: no activation after the projection.
        self.project = ConvBNAct(
            expanded_channels, out_channels, 1, activation=None, norm_layer=norm_layer
        )
        self.drop_path = StochasticDepth(drop_path_rate) if self.use_residual else nn.Identity()
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        branch = self.project(self.se(self.depthwise(self.expand(x))))
        if self.use_residual:
            out = self.drop_path(branch)
            out += x  # in place: the branch's output is a fresh tensor nothing else reads
            return out
        return branch
