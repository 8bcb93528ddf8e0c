"""GoogLeNet (Inception v1): width through parallel branches, cheap thanks to 1x1 reductions.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842.

What the design solved: making a network deeper and wider by uniformly adding
filters makes its cost grow quadratically, and it is unclear which kernel size
a layer should use. The Inception module runs 1x1, 3x3 and 5x5 convolutions
and a 3x3 max-pool side by side and concatenates their maps, letting the
network combine scales; 1x1 convolutions first reduce the channels that the
3x3 and 5x5 branches see (§4), so 22 layers cost less than VGG's 16. Global
average pooling replaces the stacked fully connected layers (§5), and two
auxiliary classifiers on intermediate layers add gradient during training.

The layers mirror torchvision's ``googlenet`` (batch normalisation after every
convolution, as in its released weights), so its state dicts load and the
outputs are equal.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import Classifier, FeatureInfo, check_input
from cnnzoo.models.registry import register_model

PAPER = "Szegedy et al. 2014, Going Deeper with Convolutions, arXiv:1409.4842"


class ConvBNReLU(nn.Module):
    """Convolution without bias -> batch norm -> ReLU (torchvision's ``BasicConv2d``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs: Any):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated along channels (Figure 2b).

    Output channels: ``ch1x1 + ch3x3 + ch5x5 + pool_proj``; every branch keeps
    the spatial size, so the maps can be stacked.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
        kernel5x5: int = 3,
    ) -> None:
        super().__init__()
        self.branch1x1 = ConvBNReLU(in_channels, ch1x1, kernel_size=1)
        self.branch3x3 = nn.Sequential(
            ConvBNReLU(in_channels, ch3x3_reduce, kernel_size=1),  # 1x1 reduction (§4)
            ConvBNReLU(ch3x3_reduce, ch3x3, kernel_size=3, padding=1),
        )
        # The paper's branch is 1x1 -> 5x5; torchvision's released network has a 3x3
        # kernel here (a known slip it keeps for its weights). The default mirrors
        # torchvision for weight compatibility; kernel5x5=5 builds the paper's branch.
        self.branch5x5 = nn.Sequential(
            ConvBNReLU(in_channels, ch5x5_reduce, kernel_size=1),
            ConvBNReLU(ch5x5_reduce, ch5x5, kernel_size=kernel5x5, padding=kernel5x5 // 2),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvBNReLU(in_channels, pool_proj, kernel_size=1),  # pool projection
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1x1, self.branch3x3, self.branch5x5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class AuxiliaryClassifier(nn.Module):
    """A side classifier on an intermediate map, used only in training (§5).

    Average pooling to 4x4, a 1x1 convolution with 128 filters, a fully
    connected layer of 1024 units with ReLU, dropout 0.7, and the class scores.
    The paper weights its loss by 0.3.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)  # the paper's 5x5/3 pooling on a 14x14 map
        self.conv = ConvBNReLU(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# Table 1: (name, in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) of each module.
INCEPTION_CONFIGS: list[tuple[str, int, int, int, int, int, int, int]] = [
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
]


class GoogLeNet(Classifier):
    """The 22-layer GoogLeNet of Table 1.

    In training mode with ``aux_logits`` the forward pass returns
    ``(logits, aux1_logits, aux2_logits)``, the auxiliary classifiers reading
    inception4a and inception4d; in evaluation mode it returns the logits alone.
    """

    head_modules = ("avgpool", "dropout", "fc", "aux1", "aux2")
    # Five stride-2 steps leave a 1x1 inception5b map at 32x32; pools round up below that.
    min_input_size = 32

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float = 0.4,
        paper_kernels: bool = False,
    ) -> None:
        super().__init__()
        if transform_input and in_channels != 3:
            raise CnnzooError(
                "transform_input re-normalises the three ImageNet colour channels; "
                f"use it only with in_channels=3 (got {in_channels})"
            )
        self.num_classes, self.in_channels = num_classes, in_channels
        self.aux_logits = aux_logits
        # True for torchvision's ImageNet weights, trained on inputs scaled to [-1, 1].
        self.transform_input = transform_input
        # Stem (Table 1): 7x7/2 conv, 3x3/2 pool, 1x1 and 3x3 convs, 3x3/2 pool.
        self.conv1 = ConvBNReLU(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBNReLU(64, 64, kernel_size=1)
        self.conv3 = ConvBNReLU(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        kernel5x5 = 5 if paper_kernels else 3
        for name, *channels in INCEPTION_CONFIGS:
            self.add_module(name, InceptionBlock(*channels, kernel5x5=kernel5x5))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.aux1 = AuxiliaryClassifier(512, num_classes) if aux_logits else None
        self.aux2 = AuxiliaryClassifier(528, num_classes) if aux_logits else None
        # Global average pooling instead of stacked fully connected layers (§5); the paper
        # drops 40% of the pooled features (torchvision: 20%, no effect on eval outputs).
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        self.feature_info = [
            FeatureInfo("conv1", 64, 2),
            FeatureInfo("conv3", 192, 4),
            FeatureInfo("inception3b", 480, 8),
            FeatureInfo("inception4e", 832, 16),
            FeatureInfo("inception5b", 1024, 32),
        ]
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation: normal weights with std 0.01. torchvision truncates
        # them at +-2, i.e. 200 standard deviations, which never happens; a plain normal
        # draw is the same distribution and builds the network about ten times faster.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _transform_input(self, x: Tensor) -> Tensor:
        """Map ImageNet-normalised input to the (x - 0.5) / 0.5 scaling of the released weights."""
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        channels = [x[:, c : c + 1] * (std[c] / 0.5) + (mean[c] - 0.5) / 0.5 for c in range(3)]
        return torch.cat(channels, dim=1)

    def _forward_stages_and_aux(
        self, x: Tensor, with_aux: bool
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Every stage map, and the auxiliary logits when ``with_aux``."""
        if self.transform_input:
            x = self._transform_input(x)
        aux: list[Tensor] = []
        conv1 = self.conv1(x)
        conv3 = self.conv3(self.conv2(self.maxpool1(conv1)))
        inception3b = self.inception3b(self.inception3a(self.maxpool2(conv3)))
        x = self.inception4a(self.maxpool3(inception3b))
        if with_aux:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        if with_aux:
            aux.append(self.aux2(x))
        inception4e = self.inception4e(x)
        inception5b = self.inception5b(self.inception5a(self.maxpool4(inception4e)))
        return [conv1, conv3, inception3b, inception4e, inception5b], aux

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        return self._forward_stages_and_aux(x, with_aux=False)[0]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(features), 1)))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        check_input(x, self.in_channels, self.min_input_size, type(self).__name__)
        with_aux = self.training and self.aux_logits
        stages, aux = self._forward_stages_and_aux(x, with_aux)
        logits = self.forward_head(stages[-1])
        return (logits, *aux) if with_aux else logits


@register_model(family="GoogLeNet", paper=PAPER, torchvision="googlenet")
def googlenet(
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = True,
    paper_kernels: bool = False,
    transform_input: bool = False,
) -> GoogLeNet:
    """``paper_kernels=True``: Table 1's 5x5 branch instead of torchvision's 3x3.

    ``transform_input=True``: the input re-normalisation torchvision's
    ImageNet weights expect (set by loading them, and kept by runs trained from them).
    """
    return GoogLeNet(
        num_classes, in_channels, aux_logits=aux_logits, paper_kernels=paper_kernels,
        transform_input=transform_input,
    )  # fmt: skip
