"""AlexNet: the network that made deep convolutional networks win ImageNet.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012.

What the design solved: networks of LeNet's kind were too small and too slow to
train for 1.2 million high-resolution images in 1000 classes. AlexNet scaled
the idea up to five convolutional and three fully connected layers (60 million
parameters) and made that trainable: ReLU instead of tanh (six times faster to
train, §3.1), local response normalisation (§3.3), overlapping max-pooling
(§3.4), dropout against over-fitting of the large fully connected layers (§4.2),
and the layers split over two GPUs (§3.2), which ``groups=2`` reproduces.

torchvision's ``alexnet`` is a different variant (the 64-192-384-256-256
channels of Krizhevsky's 2014 "One weird trick" paper, without LRN), so this
network has no torchvision counterpart and no torchvision weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import Classifier, FeatureInfo
from cnnzoo.models.layers import fully_connected_layers
from cnnzoo.models.registry import register_model

PAPER = "Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep CNNs"


def local_response_norm() -> nn.LocalResponseNorm:
    """LRN over 5 adjacent channels with k=2, alpha=1e-4, beta=0.75 (AlexNet §3.3).

    The paper chose these by validation; it lowered the top-1 error by 1.4%.
    The paper's equation scales the sum of squares by alpha, PyTorch's layer by
    alpha / size, so PyTorch's alpha is the paper's times the size: the layer
    then computes exactly the paper's b = a / (k + alpha * sum a^2)^beta.
    """
    size, paper_alpha = 5, 1e-4
    return nn.LocalResponseNorm(size=size, alpha=paper_alpha * size, beta=0.75, k=2.0)


def overlapping_max_pool() -> nn.MaxPool2d:
    """3x3 windows at stride 2, so neighbouring windows overlap (§3.4: -0.4% top-1 error)."""
    return nn.MaxPool2d(kernel_size=3, stride=2)


class AlexNet(Classifier):
    """Five convolutional layers (96-256-384-384-256) and three fully connected ones.

    Layer order as in §3.5 and Figure 2: LRN follows the ReLU of conv1 and
    conv2, max-pooling follows both LRN layers and conv5. With ``groups=2``
    conv2, conv4 and conv5 see only the half of the previous layer's maps on
    their own GPU, while conv3 and the fully connected layers connect across
    GPUs (§3.2).
    """

    head_modules = ("avgpool", "fc6", "fc7", "fc8")
    # Smallest side that still leaves a 1x1 map after pool5: 63 -> 15 -> 7 -> 3 -> 1.
    min_input_size = 63

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, groups: int = 1, dropout: float = 0.5
    ) -> None:
        super().__init__()
        if groups not in (1, 2):
            raise CnnzooError(
                f"groups must be 1 (one GPU) or 2 (the paper's two-GPU split), got {groups!r}"
            )
        self.num_classes, self.in_channels, self.groups = num_classes, in_channels, groups
        # Padding 2 turns the 224x224 input the paper states into its 55x55 conv1 maps.
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            local_response_norm(),
        )
        self.pool1 = overlapping_max_pool()
        self.conv2 = nn.Sequential(
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups),
            nn.ReLU(inplace=True),
            local_response_norm(),
        )
        self.pool2 = overlapping_max_pool()
        self.conv3 = nn.Sequential(
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True)
        )
        self.conv4 = nn.Sequential(
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups), nn.ReLU(inplace=True)
        )
        self.conv5 = nn.Sequential(
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups), nn.ReLU(inplace=True)
        )
        self.pool5 = overlapping_max_pool()
        # A 224x224 input gives 6x6 pool5 maps; other sizes are pooled to 6x6 so fc6 fits.
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.fc6, self.fc7, self.fc8 = fully_connected_layers(256 * 6 * 6, num_classes)
        # Dropout 0.5 on the outputs of fc6 and fc7 (§4.2).
        self.dropout = nn.Dropout(dropout)
        self.feature_info = [
            FeatureInfo("conv1", 96, 4),
            FeatureInfo("conv2", 256, 8),
            FeatureInfo("conv5", 256, 16),
            FeatureInfo("pool5", 256, 32),
        ]

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        conv1 = self.conv1(x)
        conv2 = self.conv2(self.pool1(conv1))
        conv5 = self.conv5(self.conv4(self.conv3(self.pool2(conv2))))
        return [conv1, conv2, conv5, self.pool5(conv5)]

    def forward_head(self, features: Tensor) -> Tensor:
        x = torch.flatten(self.avgpool(features), 1)
        x = self.dropout(F.relu(self.fc6(x)))
        x = self.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)


@register_model(family="AlexNet", paper=PAPER)
def alexnet(num_classes: int = 1000, in_channels: int = 3, groups: int = 1) -> AlexNet:
    return AlexNet(num_classes, in_channels, groups=groups)
