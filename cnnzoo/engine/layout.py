"""The memory layout a network trains in: NHWC (channels_last) on CPUs by default.

A convolution reads, for each output pixel, a small window of every input
channel. Stored NCHW, one window's channels lie a whole feature map apart;
stored NHWC they are adjacent, so oneDNN's CPU convolutions, batch norms and
pointwise ops vectorise over channels without reordering tensors between
layers. Intel's extension for PyTorch (``ipex.optimize``) converts CPU models
to channels_last for the same reason. Measured here with ``cnnzoo benchmark
MODEL --mode train --fast-paths`` (fp32, 2 cores), NHWC over NCHW per
training step: ResNet-50 1.20x, DenseNet-121 1.20x, GoogLeNet 1.53x,
MobileNet-v2 1.34x, EfficientNet-B0 1.51x at 224x224 batch 8; MobileNet-v2
2.57x and EfficientNet-B0 3.27x at 32x32 batch 64; ResNet-20 1.21x at
28x28 and LeNet-5 1.22x at 32x32 batch 128. No network measured slower; the
closest, ResNet-18 and ResNet-50 at 32x32, were 0.99x and 1.03x.

On GPUs the layout pays mostly with tensor cores and mixed precision, so
there the default stays NCHW; ``channels_last=True`` or ``False`` in the
configuration (``--channels-last`` / ``--no-channels-last``) overrides the
default anywhere. Every layer computes the same function in either layout;
only the order of floating-point sums differs.
"""

from __future__ import annotations

import torch


def resolve_channels_last(setting: bool | None, device: torch.device | str) -> bool:
    """``setting`` where one was given; otherwise NHWC on CPU and NCHW elsewhere."""
    if setting is not None:
        return setting
    return torch.device(device).type == "cpu"
