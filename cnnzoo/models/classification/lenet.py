"""LeNet: the first convolutional networks trained end to end by back-propagation.

* LeCun et al., "Backpropagation Applied to Handwritten Zip Code Recognition",
  Neural Computation 1989 (``lenet1989``).
* LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document
  Recognition", Proc. IEEE 1998 (``lenet5``).

What the design solved: a fully connected network on raw pixels needs a weight
for every pixel and ignores that a stroke means the same thing anywhere in the
image. LeNet shares one small kernel across all positions (a convolution), so
features are detected wherever they occur with a tiny number of weights, and
subsampling makes them tolerant to small shifts.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnzoo.models.classification.base import Classifier, FeatureInfo
from cnnzoo.models.registry import register_model

PAPER_1989 = "LeCun et al. 1989, Backpropagation Applied to Handwritten Zip Code Recognition"
PAPER_1998 = "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition"


class LeNet1989(Classifier):
    """The 1989 zip-code network on 16x16 digits.

    H1: 12 feature maps of 8x8 from 5x5 kernels at stride 2 (weight sharing);
    H2: 12 maps of 4x4 from 5x5 kernels at stride 2; H3: 30 hidden units;
    output: one unit per class. tanh everywhere, as in the paper, so it can be
    trained with mean-squared error on +-1 targets (``--loss mse``).
    """

    head_modules = ("hidden", "output")
    input_size = (1, 16, 16)  # the zip-code digits, normalised to 16x16 grey pixels
    min_input_size = 16

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.h1 = nn.Sequential(nn.Conv2d(in_channels, 12, 5, stride=2, padding=2), nn.Tanh())
        self.h2 = nn.Sequential(nn.Conv2d(12, 12, 5, stride=2, padding=2), nn.Tanh())
        # The paper's 16x16 input gives a 4x4 H2 map; other sizes are pooled to it.
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(12 * 4 * 4, 30), nn.Tanh())
        self.output = nn.Sequential(nn.Linear(30, num_classes), nn.Tanh())
        self.feature_info = [FeatureInfo("h1", 12, 2), FeatureInfo("h2", 12, 4)]

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        h1 = self.h1(x)
        return [h1, self.h2(h1)]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.output(self.hidden(self.pool(features)))


class LeNet5(Classifier):
    """LeNet-5 on 32x32 images: C1 6@5x5, S2, C3 16@5x5, S4, C5 120, F6 84, output.

    Subsampling layers S2 and S4 are 2x2 average pools. C3 is fully connected
    to S2 (the paper's sparse connection table was a 1998 compute saving), which
    gives the paper's 61,706 parameters for 10 classes on 1-channel input. The
    Gaussian RBF output layer is replaced by a linear layer, as is customary.
    """

    head_modules = ("c5", "f6", "output")
    input_size = (1, 32, 32)  # MNIST's 28x28 digits centred in a 32x32 field (§III.A)
    min_input_size = 32

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.c1 = nn.Sequential(nn.Conv2d(in_channels, 6, 5), nn.Tanh())
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Sequential(nn.Conv2d(6, 16, 5), nn.Tanh())
        self.s4 = nn.AvgPool2d(2)
        # C5 is a 5x5 convolution that covers the whole 5x5 S4 map of a 32x32 input;
        # larger inputs are pooled to 5x5 first so any size works.
        self.c5 = nn.Sequential(
            nn.AdaptiveAvgPool2d(5), nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten()
        )
        self.f6 = nn.Sequential(nn.Linear(120, 84), nn.Tanh())
        self.output = nn.Linear(84, num_classes)
        self.feature_info = [FeatureInfo("s2", 6, 2), FeatureInfo("s4", 16, 4)]

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        s2 = self.s2(self.c1(x))
        return [s2, self.s4(self.c3(s2))]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.output(self.f6(self.c5(features)))


@register_model(family="LeNet", paper=PAPER_1989)
def lenet1989(num_classes: int = 1000, in_channels: int = 3) -> LeNet1989:
    return LeNet1989(num_classes, in_channels)


@register_model(family="LeNet", paper=PAPER_1998)
def lenet5(num_classes: int = 1000, in_channels: int = 3) -> LeNet5:
    return LeNet5(num_classes, in_channels)
