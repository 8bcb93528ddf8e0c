"""What every segmentation network shares: one forward, and encoders from the registry.

A segmentation network maps an (N, C, H, W) batch to (N, num_classes, H, W)
logits. Its ``__init__`` only composes encoder -> decoder -> head (as in
segmentation_models_pytorch); :meth:`SegmentationModel.forward` is written
once here: it checks the input, pads it to a size the network can take (a
multiple of its total stride, at least its smallest input, plus the context
a network of unpadded convolutions loses at the border), runs the network and
crops every output back to the input's size. So any input size works, and the
alignment of the output with the input is exact.

Encoders other than a family's own come from the registry only, through the
classifiers' feature interface (``features_only=True`` and ``feature_info``),
never through attribute names: :func:`create_encoder`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import (
    FeatureExtractor,
    FeatureInfo,
    check_input,
    he_fan_out_init,
)
from cnnzoo.models.registry import create_model, get_model_entry, list_models

# Logits, or in training mode (logits, *auxiliary logits) when the network has auxiliary heads.
SegmentationOutput = Tensor | tuple[Tensor, ...]


class SegmentationModel(nn.Module):
    """Base class of every segmentation network.

    Subclasses build their parts in ``__init__``, set the attributes below and
    implement :meth:`segment`; they never override :meth:`forward`.
    """

    num_classes: int
    in_channels: int
    input_size: tuple[int, int, int]  # (C, H, W) the paper trained on; the registry reads it
    # forward() pads any input up to a size the network takes, so every side from 1 works.
    min_input_size: int = 1
    # The network itself takes sides of min_segment_size + k * size_divisor (k = 0, 1, ...):
    # size_divisor is its total stride, min_segment_size its smallest input.
    size_divisor: int = 1
    min_segment_size: int = 1
    # Pixels lost at each side by unpadded ("valid") convolutions: segment() returns a map
    # 2 * border smaller than its input, and forward() mirrors this much context around it.
    border: int = 0

    def segment(self, x: Tensor) -> SegmentationOutput:
        """Logits for an input that fits ``size_divisor`` and ``min_segment_size``.

        Returns maps of the input's size less ``2 * border``; in training mode
        a network with auxiliary heads returns ``(logits, *auxiliary_logits)``,
        all of that size.
        """
        raise NotImplementedError

    @property
    def backbone(self) -> str | None:
        """The registered classifier the encoder is made of, whose pretrained weights fit it.

        None for a network's own encoder (the paper's U-Net, SegNet-Basic).
        """
        return getattr(getattr(self, "encoder", None), "backbone", None)

    def forward(self, x: Tensor) -> SegmentationOutput:
        check_input(x, self.in_channels, 1, type(self).__name__)
        height, width = x.shape[-2:]
        padded, top, left = self.pad_input(x)
        outputs = self.segment(padded)
        if isinstance(outputs, tuple):
            return tuple(
                crop(o, top - self.border, left - self.border, height, width) for o in outputs
            )
        return crop(outputs, top - self.border, left - self.border, height, width)

    def padded_size(self, side: int) -> int:
        """The smallest side the network takes that holds ``side`` pixels and their border."""
        steps = math.ceil(
            max(side + 2 * self.border - self.min_segment_size, 0) / self.size_divisor
        )
        return self.min_segment_size + steps * self.size_divisor

    def pad_input(self, x: Tensor) -> tuple[Tensor, int, int]:
        """Pad ``x`` to :meth:`padded_size`; returns the padded batch and the input's offset.

        The border context is mirrored, as U-Net's overlap-tile strategy does
        (Ronneberger et al. 2015, Fig. 2); the rest is zero padding, split
        evenly between the two sides, as a padded convolution would see it.
        """
        height, width = x.shape[-2:]
        if self.border:
            x = mirror_pad(x, self.border)
        extra_h = self.padded_size(height) - x.shape[-2]
        extra_w = self.padded_size(width) - x.shape[-1]
        top, left = extra_h // 2, extra_w // 2
        if extra_h or extra_w:
            x = F.pad(x, (left, extra_w - left, top, extra_h - top))
        return x, top + self.border, left + self.border


def crop(x: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """The ``height`` x ``width`` window of ``x`` starting at (``top``, ``left``)."""
    return x[..., top : top + height, left : left + width]


def mirror_pad(x: Tensor, amount: int) -> Tensor:
    """Mirror ``amount`` pixels of context around ``x``, repeating the mirror for tiny inputs.

    ``F.pad(mode="reflect")`` needs the pad to be smaller than the input; an
    image narrower than U-Net's 92-pixel border is mirrored several times.
    """
    while amount > 0:
        step = min(amount, x.shape[-2] - 1, x.shape[-1] - 1)
        if step < 1:  # a single row or column has nothing to mirror: repeat it
            return F.pad(x, (amount,) * 4, mode="replicate")
        x = F.pad(x, (step,) * 4, mode="reflect")
        amount -= step
    return x


def bilinear_resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resampling to ``size`` (align_corners=False, as torchvision's heads)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def create_encoder(backbone: str, in_channels: int, output_stride: int = 32) -> FeatureExtractor:
    """The feature extractor of the registered classifier ``backbone``.

    Args:
        backbone: a classifier name from ``cnnzoo list`` (e.g. "resnet50").
        in_channels: channels of the input images.
        output_stride: stride of the coarsest feature map; below the backbone's own
            (usually 32) the backbone replaces its last strides with dilation,
            which needs an ``output_stride`` option.
    """
    if not isinstance(backbone, str):
        raise CnnzooError(f"backbone must be a model name such as 'resnet50', got {backbone!r}")
    entry = get_model_entry(backbone)
    if entry.task != "classification":
        raise CnnzooError(
            f"backbone {backbone!r} is a {entry.task} network; choose a classifier "
            f"such as: {', '.join(_backbones_with_features()[:8])}"
        )
    options = {"output_stride": output_stride} if output_stride != 32 else {}
    if options and "output_stride" not in _builder_options(backbone):
        dilatable = [
            n for n in _backbones_with_features() if "output_stride" in _builder_options(n)
        ]
        raise CnnzooError(
            f"backbone {backbone!r} cannot run at output stride {output_stride} (it has no "
            f"output_stride option); choose one of: {', '.join(dilatable)}"
        )
    try:
        encoder = create_model(backbone, in_channels=in_channels, features_only=True, **options)
    except CnnzooError as error:
        raise CnnzooError(f"backbone {backbone!r}: {error}") from None
    coarsest = max(info.stride for info in encoder.feature_info)
    if coarsest > output_stride:
        raise CnnzooError(
            f"backbone {backbone!r} reached stride {coarsest}, more than the output stride "
            f"{output_stride} asked for"
        )
    # The name lets pretrained weights of the backbone find their way into the encoder.
    encoder.backbone = backbone
    return encoder


def stage_index(feature_info: Sequence[FeatureInfo], stride: int) -> int:
    """Index of the last (deepest) stage at ``stride``; a clear error if there is none."""
    matches = [i for i, info in enumerate(feature_info) if info.stride == stride]
    if not matches:
        strides = sorted({info.stride for info in feature_info})
        raise CnnzooError(
            f"the backbone has no feature map at stride {stride} (its strides are {strides})"
        )
    return matches[-1]


def bilinear_kernel(channels: int, kernel_size: int) -> Tensor:
    """Weights making a transposed convolution a per-channel bilinear upsampler.

    The initialisation of FCN's learnable upsampling (Long et al. 2015, §3.3),
    as in the reference implementation's ``upsample_filt``: a tent of width
    ``kernel_size`` centred on the kernel, on the diagonal (channel c to c).
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(kernel_size, dtype=torch.float64) - center).abs() / factor
    tent = (ramp[:, None] * ramp[None, :]).float()
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = tent
    return weight


def init_weights(module: nn.Module) -> None:
    """He initialisation for convolutions (He et al. 2015, arXiv:1502.01852), unit batch norm.

    Applied to the parts a segmentation network adds to its encoder.
    """
    he_fan_out_init(module)


def _builder_options(name: str) -> set[str]:
    return set(inspect.signature(get_model_entry(name).builder).parameters)


def _backbones_with_features() -> list[str]:
    return list_models(task="classification")
