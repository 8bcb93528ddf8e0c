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

A convolution that sees 1x1 maps (ResNet-18's last stage at 32x32 input) is the
exception: a 1x1 map is stored the same way in both layouts, PyTorch then
computes the weight gradient NCHW, and autograd copies it into an NHWC weight's
layout on every step (three 9 MB copies per step for ResNet-18, which made it
train 4 % slower NHWC than NCHW at 32x32). :func:`to_channels_last` leaves
those weights NCHW; ResNet-18 at 32x32 batch 64 then trains 7 % faster than
all-NCHW instead.

On GPUs the layout pays mostly with tensor cores and mixed precision, so
there the default stays NCHW; ``channels_last=True`` or ``False`` in the
configuration (``--channels-last`` / ``--no-channels-last``) overrides the
default anywhere. Every layer computes the same function in either layout;
only the order of floating-point sums differs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def resolve_channels_last(setting: bool | None, device: torch.device | str) -> bool:
    """``setting`` where one was given; otherwise NHWC on CPU and NCHW elsewhere."""
    if setting is not None:
        return setting
    return torch.device(device).type == "cpu"


def layout_name(channels_last: bool) -> str:
    """ "NHWC" or "NCHW", as tables and notes name a layout."""
    return "NHWC" if channels_last else "NCHW"


def to_channels_last(model: nn.Module, example: Tensor) -> nn.Module:
    """``model`` with its weights NHWC, except convolutions that see 1x1 maps on ``example``.

    ``example`` is a batch (two images suffice) of the size the network will train on;
    it is run through once, without gradients, to find the convolutions whose input
    maps are 1x1. Batch-norm statistics and the random number generator are left as
    they were: the probe changes nothing a training run depends on.
    """
    model = model.to(memory_format=torch.channels_last)
    one_by_one: list[nn.Conv2d] = []

    def record(module: nn.Module, inputs: tuple) -> None:
        if inputs[0].shape[-2:] == (1, 1):
            one_by_one.append(module)

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks = [conv.register_forward_pre_hook(record) for conv in convs]
    buffers = [buffer.clone() for buffer in model.buffers()]
    try:
        devices = [example.device] if example.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            model(example.contiguous(memory_format=torch.channels_last))
    finally:
        for hook in hooks:
            hook.remove()
        for buffer, saved in zip(model.buffers(), buffers):
            buffer.copy_(saved)
    for conv in one_by_one:
        conv.weight.data = conv.weight.data.contiguous()
    return model
