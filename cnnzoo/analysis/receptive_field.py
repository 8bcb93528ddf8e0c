"""Theoretical receptive fields of any network, and a gradient check of them.

The receptive field of a unit is the window of input pixels that can change
it. Along one axis a feature map is described by three numbers (Araujo,
Norris, Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019, doi:10.23915/distill.00021):

* ``extent`` -- the field's size in input pixels,
* ``jump``   -- input pixels between two neighbouring units (the total stride),
* ``start``  -- input coordinate of the centre of unit 0's field.

A convolution or pooling with kernel k, stride s, left padding p and dilation
d (effective kernel k' = d (k - 1) + 1) maps them to::

    extent' = extent + (k' - 1) * jump
    jump'   = jump * s
    start'  = start + ((k' - 1) / 2 - p) * jump

Instead of reading a network's definition, :class:`ReceptiveFieldTracker`
follows the tensors: as a ``TorchFunctionMode`` it sees every operation a
forward pass performs and attaches the description to each output. Any graph
therefore works -- Inception branches, residual sums, dense concatenations,
U-Net skips -- without tracing. Where paths merge (``cat``, ``+``, ``*``) the
output's field is the union of the inputs' fields, i.e. the largest field over
all the paths that reach it.

Conventions:

* Global pooling (an adaptive pool to 1x1, a mean over H and W, a flatten
  before a fully connected layer) sees every unit of its input: its field is
  the union of all of them, ``extent + (n - 1) * jump``, which covers the whole
  image, and the tensor is marked ``is_global``.
* A global summary multiplied back onto a map (squeeze-and-excitation gates,
  DeepLab's image pooling) makes every unit depend on the whole image. The
  reported ``extent`` stays the *local* field of the convolutional paths, and the
  map is marked ``global_context``.
* Upsampling (interpolation, transposed convolution, max-unpooling) and
  adaptive pools whose windows do not tile evenly give each unit a field of at
  most the reported size, but the fields' centres are not an exact arithmetic
  progression; such maps are marked ``exact=False``.

:func:`verify_receptive_field` checks the arithmetic against autograd: with
every weight a positive constant, normalisation and dropout removed,
activations replaced by the identity and max-pooling by average pooling,
nothing can cancel, so the input pixels with a non-zero gradient of one centre
unit are exactly its receptive field.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from cnnzoo.errors import CnnzooError
from cnnzoo.measure.modes import evaluating

FIELD_ATTRIBUTE = "_cnnzoo_receptive_field"


@dataclass(frozen=True)
class AxisField:
    """A feature map's receptive-field description along one spatial axis."""

    units: int  # units (pixels of the feature map) along this axis
    extent: float  # receptive field of each unit, in input pixels
    jump: float  # input pixels between neighbouring units (total stride)
    start: float  # input coordinate of the centre of unit 0's field

    def window(
        self, kernel: int, stride: int, padding: float, dilation: int, size: int
    ) -> AxisField:
        """After a sliding window (convolution or pooling) with these parameters."""
        effective = dilation * (kernel - 1) + 1
        return AxisField(
            units=size,
            extent=self.extent + (effective - 1) * self.jump,
            jump=self.jump * stride,
            start=self.start + ((effective - 1) / 2 - padding) * self.jump,
        )

    def whole(self) -> AxisField:
        """The union of the fields of all units: what a global pool sees."""
        low = self.start - (self.extent - 1) / 2
        high = self.start + (self.units - 1) * self.jump + (self.extent - 1) / 2
        return AxisField(1, high - low + 1, self.jump * self.units, (low + high) / 2)

    def bounds(self, unit: int) -> tuple[float, float]:
        """First and last input pixel of the field of ``unit`` (unclipped)."""
        center = self.start + unit * self.jump
        return center - (self.extent - 1) / 2, center + (self.extent - 1) / 2


@dataclass(frozen=True)
class FieldInfo:
    """Receptive field of a feature map: one :class:`AxisField` per spatial axis."""

    height: AxisField
    width: AxisField
    is_global: bool = False  # a global summary of the input (after global pooling/flatten)
    global_context: bool = False  # a path through a global summary reaches it (SE, image pooling)
    exact: bool = True  # start + i * jump is each unit's exact field centre

    @property
    def size(self) -> tuple[float, float]:
        """(height, width) of the receptive field in input pixels."""
        return self.height.extent, self.width.extent

    @property
    def jump(self) -> tuple[float, float]:
        """(height, width) input pixels between neighbouring units."""
        return self.height.jump, self.width.jump

    def whole(self) -> FieldInfo:
        return FieldInfo(self.height.whole(), self.width.whole(), True, self.global_context, True)


def input_field(height: int, width: int) -> FieldInfo:
    """The input image: every pixel sees itself."""
    return FieldInfo(AxisField(height, 1, 1, 0), AxisField(width, 1, 1, 0))


def field_of(tensor: Any) -> FieldInfo | None:
    """The receptive field attached to ``tensor`` by a tracked forward pass, if any."""
    return getattr(tensor, FIELD_ATTRIBUTE, None) if isinstance(tensor, Tensor) else None


def union(fields: Sequence[FieldInfo], sizes: tuple[int, int]) -> FieldInfo:
    """The field of a map that merges maps of the same size: the union over the paths."""

    def merge(axes: list[AxisField], size: int) -> tuple[AxisField, bool]:
        low = min(a.start - (a.extent - 1) / 2 for a in axes)
        high = max(a.start + (a.extent - 1) / 2 for a in axes)
        jumps = {a.jump for a in axes}
        return AxisField(size, high - low + 1, max(jumps), (low + high) / 2), len(jumps) == 1

    height, same_height = merge([f.height for f in fields], sizes[0])
    width, same_width = merge([f.width for f in fields], sizes[1])
    return FieldInfo(
        height,
        width,
        is_global=all(f.is_global for f in fields),
        global_context=any(f.global_context for f in fields),
        exact=all(f.exact for f in fields) and same_height and same_width,
    )


# ---------------------------------------------------------------------------
# Argument binding for the operations that change the field.

_SIGNATURES: dict[str, tuple[str, ...]] = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv_transpose2d": (
        "input",
        "weight",
        "bias",
        "stride",
        "padding",
        "output_padding",
        "groups",
        "dilation",
    ),
    "max_pool2d": (
        "input",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "ceil_mode",
        "return_indices",
    ),
    "avg_pool2d": (
        "input",
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
    "lp_pool2d": ("input", "norm_type", "kernel_size", "stride", "ceil_mode"),
    "adaptive_pool2d": ("input", "output_size", "return_indices"),
    "max_unpool2d": ("input", "indices", "kernel_size", "stride", "padding", "output_size"),
    "interpolate": (
        "input",
        "size",
        "scale_factor",
        "mode",
        "align_corners",
        "recompute_scale_factor",
        "antialias",
    ),
    "pad": ("input", "pad", "mode", "value"),
    "narrow": ("input", "dim", "start", "length"),
    "linear": ("input", "weight", "bias"),
}
_ALIASES = {
    "_max_pool2d": "max_pool2d",
    "max_pool2d_with_indices": "max_pool2d",
    "adaptive_avg_pool2d": "adaptive_pool2d",
    "adaptive_max_pool2d": "adaptive_pool2d",
    "adaptive_max_pool2d_with_indices": "adaptive_pool2d",
    "upsample": "interpolate",
    "upsample_bilinear": "interpolate",
    "upsample_nearest": "interpolate",
}


def _operation(func: Callable) -> str:
    name = getattr(func, "__name__", "")
    return _ALIASES.get(name, name)


def _bind(operation: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = dict(zip(_SIGNATURES[operation], args))
    bound.update(kwargs)
    return bound


def _pair(value: Any, default: int = 0) -> tuple[Any, Any]:
    if value is None:
        return default, default
    if isinstance(value, (list, tuple)):
        return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])
    return value, value


# ---------------------------------------------------------------------------
# How each operation changes the field (forward arithmetic).


def _conv_field(field: FieldInfo, bound: dict, out: Tensor) -> FieldInfo:
    weight = bound["weight"]
    kernel = weight.shape[-2:]
    stride = _pair(bound.get("stride", 1), 1)
    dilation = _pair(bound.get("dilation", 1), 1)
    padding = bound.get("padding", 0)
    if isinstance(padding, str):  # "valid" = no padding; "same" pads (total // 2) on the left
        padding = tuple(
            0 if padding == "valid" else dilation[i] * (kernel[i] - 1) // 2 for i in range(2)
        )
    padding = _pair(padding)
    axes = [
        axis.window(kernel[i], stride[i], padding[i], dilation[i], out.shape[2 + i])
        for i, axis in enumerate((field.height, field.width))
    ]
    return replace(field, height=axes[0], width=axes[1])


def _pool_field(field: FieldInfo, operation: str, bound: dict, out: Tensor) -> FieldInfo:
    kernel = _pair(bound["kernel_size"])
    stride = bound.get("stride")
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    padding = _pair(bound.get("padding", 0)) if operation != "lp_pool2d" else (0, 0)
    dilation = _pair(bound.get("dilation", 1), 1) if operation == "max_pool2d" else (1, 1)
    axes = [
        axis.window(kernel[i], stride[i], padding[i], dilation[i], out.shape[2 + i])
        for i, axis in enumerate((field.height, field.width))
    ]
    return replace(field, height=axes[0], width=axes[1])


def _adaptive_field(field: FieldInfo, out: Tensor) -> FieldInfo:
    """Adaptive pooling: window i spans [floor(i n / m), ceil((i + 1) n / m)) of n inputs."""
    if out.shape[-2:] == (1, 1):
        return field.whole()
    axes, exact = [], field.exact
    for axis, outputs in ((field.height, out.shape[-2]), (field.width, out.shape[-1])):
        inputs = axis.units
        if inputs % outputs == 0:
            kernel = inputs // outputs
            axes.append(axis.window(kernel, kernel, 0, 1, outputs))
            continue
        widest = max(
            math.ceil((i + 1) * inputs / outputs) - (i * inputs) // outputs for i in range(outputs)
        )
        first = math.ceil(inputs / outputs)
        axes.append(
            AxisField(
                outputs,
                axis.extent + (widest - 1) * axis.jump,
                axis.jump * inputs / outputs,
                axis.start + (first - 1) / 2 * axis.jump,
            )
        )
        exact = False
    return replace(field, height=axes[0], width=axes[1], exact=exact)


def _transposed_taps(kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Most input units that feed one output unit of a transposed convolution."""
    most = 1
    for residue in range(stride):
        taps = [t for t in range(kernel) if (residue + padding - dilation * t) % stride == 0]
        if taps:
            most = max(most, (max(taps) - min(taps)) * dilation // stride + 1)
    return most


def _transposed_field(
    field: FieldInfo, kernel, stride, padding, dilation, out: Tensor
) -> FieldInfo:
    """Transposed convolution / max-unpooling: output o gets input i where o = i s - p + d t."""
    axes = []
    for i, axis in enumerate((field.height, field.width)):
        taps = _transposed_taps(kernel[i], stride[i], padding[i], dilation[i])
        center = (padding[i] - dilation[i] * (kernel[i] - 1) / 2) / stride[i]
        axes.append(
            AxisField(
                out.shape[2 + i],
                axis.extent + (taps - 1) * axis.jump,
                axis.jump / stride[i],
                axis.start + center * axis.jump,
            )
        )
    exact = field.exact and stride == (1, 1)
    return replace(field, height=axes[0], width=axes[1], exact=exact)


_INTERPOLATION_TAPS = {"nearest": 1, "nearest-exact": 1, "linear": 2, "bilinear": 2, "bicubic": 4}


def _interpolated_field(field: FieldInfo, bound: dict, out: Tensor) -> FieldInfo:
    mode = bound.get("mode", "nearest")
    if mode == "area":  # area interpolation is adaptive average pooling
        return _adaptive_field(field, out)
    taps = _INTERPOLATION_TAPS.get(mode, 4)
    align_corners = bool(bound.get("align_corners"))
    axes, exact = [], field.exact
    for i, axis in enumerate((field.height, field.width)):
        inputs, outputs = axis.units, out.shape[2 + i]
        if inputs == outputs:
            axes.append(axis)
            continue
        exact = False
        if align_corners and outputs > 1:
            scale, first = (inputs - 1) / (outputs - 1), 0.0
        else:
            scale = inputs / outputs
            first = 0.0 if mode.startswith("nearest") else 0.5 * scale - 0.5
        axes.append(
            AxisField(
                outputs,
                axis.extent + (taps - 1) * axis.jump,
                axis.jump * scale,
                axis.start + first * axis.jump,
            )
        )
    return replace(field, height=axes[0], width=axes[1], exact=exact)


def _padded_field(field: FieldInfo, bound: dict, out: Tensor) -> FieldInfo:
    """Constant padding (or cropping, with negative amounts) shifts unit 0."""
    pad = list(bound["pad"]) + [0, 0, 0, 0]
    left, top = pad[0], pad[2]
    exact = field.exact and bound.get("mode", "constant") == "constant"
    height = replace(
        field.height, units=out.shape[-2], start=field.height.start - top * field.height.jump
    )
    width = replace(
        field.width, units=out.shape[-1], start=field.width.start - left * field.width.jump
    )
    return replace(field, height=height, width=width, exact=exact)


def _cropped_axis(axis: AxisField, first: int, step: int, size: int) -> AxisField:
    return AxisField(size, axis.extent, axis.jump * step, axis.start + first * axis.jump)


def _sliced_field(field: FieldInfo, source: Tensor, index: Any, out: Tensor) -> FieldInfo | None:
    """``x[..., a:b, c:d]``: slicing H and W crops the map (as U-Net and FCN do)."""
    items = index if isinstance(index, tuple) else (index,)
    if any(not isinstance(i, (slice, int, type(Ellipsis))) for i in items) or out.dim() != 4:
        return None
    if Ellipsis in items:
        at = items.index(Ellipsis)
        filler = (slice(None),) * (source.dim() - len(items) + 1)
        items = items[:at] + filler + items[at + 1 :]
    items = tuple(items) + (slice(None),) * (source.dim() - len(items))
    if any(isinstance(i, int) for i in items):
        return None
    axes = []
    for dim, axis in ((2, field.height), (3, field.width)):
        first, _, step = items[dim].indices(source.shape[dim])
        axes.append(_cropped_axis(axis, first, step, out.shape[dim]))
    return replace(field, height=axes[0], width=axes[1])


def _narrowed_field(field: FieldInfo, bound: dict, source: Tensor, out: Tensor) -> FieldInfo | None:
    dim = bound["dim"] % source.dim()
    if dim not in (2, 3):
        return None
    start = int(bound["start"]) % source.shape[dim]
    if dim == 2:
        return replace(field, height=_cropped_axis(field.height, start, 1, out.shape[2]))
    return replace(field, width=_cropped_axis(field.width, start, 1, out.shape[3]))


def _spatial(tensor: Tensor) -> tuple[int, int] | None:
    """(H, W) of a map: the last two dimensions of (N, C, H, W), or of a stack of maps."""
    return tuple(tensor.shape[-2:]) if tensor.dim() >= 4 else None  # type: ignore[return-value]


def _merged_field(inputs: list[FieldInfo], out: Tensor) -> FieldInfo:
    """Any other operation: element-wise ops keep the field, merges take the union.

    Inputs the size of the output are the local paths; smaller ones broadcast
    onto it (a 1x1 gate) and count as global context. An output that is not a
    map of the same size (flatten, a mean over H and W) summarises the whole input.
    """
    sizes = _spatial(out)
    local = [f for f in inputs if not f.is_global and (f.height.units, f.width.units) == sizes]
    if local:
        merged = union(local, sizes)
        if len(local) < len(inputs):
            merged = replace(merged, global_context=True)
        return merged
    whole = union([f if f.is_global else f.whole() for f in inputs], (1, 1))
    if sizes is not None:
        whole = replace(whole, height=replace(whole.height, units=sizes[0]))
        whole = replace(whole, width=replace(whole.width, units=sizes[1]))
    return replace(whole, is_global=True)


def _output_field(func: Callable, args: tuple, kwargs: dict, out: Tensor) -> FieldInfo | None:
    """The receptive field of ``out = func(*args, **kwargs)``, from those of its inputs."""
    tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)]
    inputs = [f for f in (field_of(t) for t in tensors) if f is not None]
    if not inputs:
        return None
    operation = _operation(func)
    first = args[0] if args else kwargs.get("input")
    source = field_of(first)
    if source is not None and not source.is_global and out.dim() == 4 and first.dim() == 4:
        if operation == "conv2d":
            return _conv_field(source, _bind(operation, args, kwargs), out)
        if operation in ("max_pool2d", "avg_pool2d", "lp_pool2d"):
            return _pool_field(source, operation, _bind(operation, args, kwargs), out)
        if operation == "adaptive_pool2d":
            return _adaptive_field(source, out)
        if operation == "conv_transpose2d":
            bound = _bind(operation, args, kwargs)
            kernel = tuple(bound["weight"].shape[-2:])
            stride = _pair(bound.get("stride", 1), 1)
            padding = _pair(bound.get("padding", 0))
            dilation = _pair(bound.get("dilation", 1), 1)
            return _transposed_field(source, kernel, stride, padding, dilation, out)
        if operation == "max_unpool2d":
            bound = _bind(operation, args, kwargs)
            kernel = _pair(bound["kernel_size"])
            stride = bound.get("stride")
            stride = kernel if stride is None else _pair(stride)
            padding = _pair(bound.get("padding", 0))
            return _transposed_field(source, kernel, stride, padding, (1, 1), out)
        if operation == "interpolate":
            return _interpolated_field(source, _bind(operation, args, kwargs), out)
        if operation == "pad":
            return _padded_field(source, _bind(operation, args, kwargs), out)
        if operation == "__getitem__":
            sliced = _sliced_field(source, first, args[1], out)
            if sliced is not None:
                return sliced
        if operation == "narrow":
            narrowed = _narrowed_field(source, _bind(operation, args, kwargs), first, out)
            if narrowed is not None:
                return narrowed
    return _merged_field(inputs, out)


# ---------------------------------------------------------------------------
# Verification by gradient support: the same forward pass with nothing that can cancel.

_NORMALIZATIONS = {"batch_norm", "instance_norm", "group_norm", "layer_norm", "local_response_norm"}
_DROPOUTS = {
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
}
_ACTIVATIONS = {
    "relu",
    "relu_",
    "relu6",
    "hardtanh",
    "hardtanh_",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "selu",
    "selu_",
    "celu",
    "celu_",
    "gelu",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "softplus",
    "prelu",
    "rrelu",
    "softsign",
}


def _positive_weight(weight: Tensor, reference: Tensor, fan_in: int) -> Tensor:
    """A constant positive kernel scaled by 1 / fan-in so activations stay near 1."""
    return torch.full(
        weight.shape, 1.0 / max(1, fan_in), dtype=reference.dtype, device=reference.device
    )


def _depthwise_window(x: Tensor, kernel, stride, padding, dilation, out_shape) -> Tensor:
    """Average-like pooling as a depthwise convolution with a constant kernel.

    Covers dilation and ``ceil_mode`` (by padding generously on the right and
    cropping to the real output size), which ``avg_pool2d`` cannot.
    """
    channels = x.shape[1]
    weight = torch.full(
        (channels, 1, kernel[0], kernel[1]), 1.0 / (kernel[0] * kernel[1]), dtype=x.dtype
    )
    extra_h, extra_w = dilation[0] * kernel[0] + stride[0], dilation[1] * kernel[1] + stride[1]
    padded = F.pad(x, (padding[1], padding[1] + extra_w, padding[0], padding[0] + extra_h))
    pooled = F.conv2d(padded, weight, stride=stride, dilation=dilation, groups=channels)
    return pooled[:, :, : out_shape[-2], : out_shape[-1]]


# How many inputs each output of a weighted operation sums over, from its weight's shape:
# (out, in, kh, kw) for a convolution, (in, out, kh, kw) transposed, (out, in) linear.
_FAN_IN: dict[str, Callable[[torch.Size], int]] = {
    "conv2d": lambda shape: shape[1] * shape[2] * shape[3],
    "conv_transpose2d": lambda shape: shape[0] * shape[2] * shape[3],
    "linear": lambda shape: shape[1],
}


def _positive_call(func: Callable, args: tuple, kwargs: dict) -> Any:
    """Run ``func`` as its positive, linear stand-in (see :func:`verify_receptive_field`)."""
    operation = _operation(func)
    name = getattr(func, "__name__", "")
    first = args[0] if args else kwargs.get("input")
    if name in _NORMALIZATIONS or name in _DROPOUTS or name in _ACTIVATIONS:
        return first
    if operation in _FAN_IN:
        bound = _bind(operation, args, kwargs)
        weight = bound["weight"]
        fan_in = _FAN_IN[operation](weight.shape)
        bound.update(weight=_positive_weight(weight, first, fan_in), bias=None)
        return func(**bound)
    if operation == "max_pool2d":
        bound = _bind(operation, args, kwargs)
        real = func(*[a.detach() if isinstance(a, Tensor) else a for a in args], **kwargs)
        real_out = real[0] if isinstance(real, tuple) else real
        kernel = _pair(bound["kernel_size"])
        stride = bound.get("stride")
        stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
        padding = _pair(bound.get("padding", 0))
        dilation = _pair(bound.get("dilation", 1), 1)
        if dilation == (1, 1) and all(2 * p <= k for p, k in zip(padding, kernel)):
            pooled = F.avg_pool2d(first, kernel, stride, padding, bool(bound.get("ceil_mode")))
        else:
            pooled = _depthwise_window(first, kernel, stride, padding, dilation, real_out.shape)
        return (pooled, real[1]) if isinstance(real, tuple) else pooled
    if operation == "adaptive_pool2d" and "max" in name:
        bound = _bind(operation, args, kwargs)
        pooled = F.adaptive_avg_pool2d(first, bound["output_size"])
        if bound.get("return_indices") or name.endswith("with_indices"):
            return pooled, func(first.detach(), bound["output_size"], True)[1]
        return pooled
    if operation == "max_unpool2d":
        # Spread each value over its whole pooling window: every position it could land on.
        bound = _bind(operation, args, kwargs)
        real = func(*[a.detach() if isinstance(a, Tensor) else a for a in args], **kwargs)
        kernel = _pair(bound["kernel_size"])
        stride = bound.get("stride")
        stride = kernel if stride is None else _pair(stride)
        padding = _pair(bound.get("padding", 0))
        channels = first.shape[1]
        weight = torch.ones(channels, 1, kernel[0], kernel[1], dtype=first.dtype)
        spread = F.conv_transpose2d(first, weight, stride=stride, groups=channels)
        spread = spread[:, :, padding[0] :, padding[1] :]
        spread = F.pad(
            spread,
            (
                0,
                max(0, real.shape[-1] - spread.shape[-1]),
                0,
                max(0, real.shape[-2] - spread.shape[-2]),
            ),
        )
        return spread[:, :, : real.shape[-2], : real.shape[-1]]
    return func(*args, **kwargs)


def _detach_global_context(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Cut the gradient through global summaries merged into local maps (SE gates).

    Of the tracked inputs, the local ones are the full-size maps; the others
    (global summaries, 1x1 gates broadcast onto the map) are replaced by ones.
    """
    fields = [field_of(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)]
    fields = [f for f in fields if f is not None]
    if len(fields) < 2:
        return args, kwargs
    largest = max(f.height.units * f.width.units for f in fields)

    def is_local(field: FieldInfo) -> bool:
        return not field.is_global and field.height.units * field.width.units == largest

    if all(is_local(f) for f in fields) or not any(is_local(f) for f in fields):
        return args, kwargs

    def cut(value: Any) -> Any:
        # A neutral constant: no gradient flows back through it, and a gate of 1
        # keeps the magnitudes of deep stacks of SE blocks from squaring each time.
        field = field_of(value)
        if field is None or is_local(field):
            return value
        neutral = torch.ones_like(value)
        setattr(neutral, FIELD_ATTRIBUTE, field)
        return neutral

    return tree_map(cut, args), tree_map(cut, kwargs)


class ReceptiveFieldTracker(TorchFunctionMode):
    """Attaches a :class:`FieldInfo` to every tensor a forward pass computes.

    Mark the input with :func:`track_input` (or :meth:`watch`), run the model
    inside the mode, then read :func:`field_of` on any tensor. With
    ``positive=True`` the operations run as their positive, linear stand-ins
    used by :func:`verify_receptive_field`.
    """

    def __init__(self, positive: bool = False) -> None:
        super().__init__()
        self.positive = positive

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.positive:
            args, kwargs = _detach_global_context(args, kwargs)
            out = _positive_call(func, args, kwargs)
        else:
            out = func(*args, **kwargs)
        outputs = [o for o in tree_flatten(out)[0] if isinstance(o, Tensor)]
        if outputs:
            for tensor in outputs:
                if (
                    _operation(func) in ("max_pool2d", "adaptive_pool2d")
                    and tensor is not outputs[0]
                ):
                    field = field_of(outputs[0])  # pooling indices share the values' field
                else:
                    field = _output_field(func, args, kwargs, tensor)
                if field is not None:
                    setattr(tensor, FIELD_ATTRIBUTE, field)
        return out


def track_input(x: Tensor) -> Tensor:
    """Mark ``x`` (N, C, H, W) as the network input whose pixels fields are measured in."""
    setattr(x, FIELD_ATTRIBUTE, input_field(x.shape[-2], x.shape[-1]))
    return x


# ---------------------------------------------------------------------------
# Public helpers: fields of every module, and the gradient check.


def main_tensor(output: Any) -> Tensor | None:
    """The tensor that stands for a module's output in a table.

    Of several (a list of stage maps, a pooled map with its indices) it is the
    one with the largest receptive field -- the deepest -- and the first one
    when none is tracked.
    """
    tensors = [t for t in tree_flatten(output)[0] if isinstance(t, Tensor)]
    if not tensors:
        return None

    def area(tensor: Tensor) -> float:
        field = field_of(tensor)
        return -1.0 if field is None else field.height.extent * field.width.extent

    return tensors[max(range(len(tensors)), key=lambda i: (area(tensors[i]), -i))]


class ModuleOutputs:
    """Hooks that keep the last output tensor of every named submodule and its call count."""

    def __init__(self, model: nn.Module, names: Iterable[str] | None = None) -> None:
        wanted = None if names is None else set(names)
        self.outputs: dict[str, Tensor] = {}
        self.calls: dict[str, int] = {}
        self.order: list[str] = []  # names in the order the forward pass first enters them
        self._handles = []
        for name, module in model.named_modules():
            if name and (wanted is None or name in wanted):
                self._handles.append(module.register_forward_pre_hook(self._enter(name)))
                self._handles.append(module.register_forward_hook(self._keep(name)))

    def _enter(self, name: str) -> Callable:
        def enter(module: nn.Module, inputs: Any) -> None:
            if name not in self.calls:
                self.order.append(name)
            self.calls[name] = self.calls.get(name, 0) + 1

        return enter

    def _keep(self, name: str) -> Callable:
        def keep(module: nn.Module, inputs: Any, output: Any) -> None:
            tensor = main_tensor(output)
            if tensor is not None:
                self.outputs[name] = tensor

        return keep

    @property
    def names(self) -> list[str]:
        """Modules that returned a tensor, in the order they were first entered."""
        return [name for name in self.order if name in self.outputs]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def receptive_fields(model: nn.Module, input_shape: Sequence[int]) -> dict[str, FieldInfo]:
    """Receptive field of the output of every submodule, by qualified name, in call order.

    Runs one forward pass on the meta device when the model lives there (no
    computation at all), otherwise on zeros of ``input_shape`` (C, H, W).
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = track_input(torch.zeros(1, *input_shape, device=device))
    hooks = ModuleOutputs(model)
    try:
        with torch.no_grad(), evaluating(model), ReceptiveFieldTracker():
            model(x)
    finally:
        hooks.remove()
    return {
        name: field for name in hooks.names if (field := field_of(hooks.outputs[name])) is not None
    }


@dataclass(frozen=True)
class FieldCheck:
    """Analytic receptive field of one centre unit against its gradient support."""

    layer: str
    unit: tuple[int, int]  # (row, column) of the unit checked in the layer's map
    analytic_size: tuple[float, float]  # theoretical field (height, width), unclipped
    analytic_box: tuple[float, float, float, float]  # top, bottom, left, right, clipped to image
    gradient_box: tuple[int, int, int, int] | None  # rows/columns with non-zero gradient
    clipped: bool  # the theoretical field reaches beyond the image

    @property
    def gradient_size(self) -> tuple[int, int]:
        if self.gradient_box is None:
            return 0, 0
        top, bottom, left, right = self.gradient_box
        return bottom - top + 1, right - left + 1

    @property
    def agrees(self) -> bool:
        return self.gradient_box is not None and all(
            abs(a - g) < 1e-6 for a, g in zip(self.analytic_box, self.gradient_box)
        )


def verifiable_layers(fields: dict[str, FieldInfo]) -> list[str]:
    """Layers whose field the gradient check can measure: local maps with exact centres."""
    return [
        name
        for name, field in fields.items()
        if not field.is_global and field.exact and field.height.units * field.width.units > 0
    ]


def layers_to_check(model: nn.Module, fields: dict[str, FieldInfo]) -> list[str]:
    """The default layers of the gradient check: every stage and the deepest verifiable map."""
    candidates = verifiable_layers(fields)
    stages = [info.name for info in getattr(model, "feature_info", [])]
    return list(dict.fromkeys([n for n in stages if n in candidates] + candidates[-1:]))


def _materialised(model: nn.Module) -> nn.Module:
    """A copy of a meta-device model with real (constant) storage, or the model itself."""
    if not any(p.is_meta for p in model.parameters()):
        return model
    real = copy.deepcopy(model).to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*real.parameters(), *real.buffers()]:
            if tensor.is_floating_point():
                tensor.fill_(1.0)
            else:
                tensor.zero_()
    return real


def verify_receptive_field(
    model: nn.Module, input_shape: Sequence[int], layers: Sequence[str] | None = None
) -> list[FieldCheck]:
    """Compare the analytic receptive field with the gradient support of a centre unit.

    Every convolution and linear weight becomes the positive constant 1 / fan-in
    and biases are dropped; batch/instance/group/layer and local response
    normalisation and dropout become the identity; activations become the
    identity (each is monotone, so on positive signals this only removes
    saturation); max-pooling becomes an average over the same window and
    max-unpooling spreads each value over its whole window. Global summaries
    merged into a map (SE gates, image pooling) are replaced by ones, which cuts
    their gradient, so the support measures the local field the table reports.
    The input is all ones in float64, so the smallest contributions at a
    field's edge do not underflow.

    For each layer (default: :func:`layers_to_check`) the unit at the centre
    of its map is differentiated with respect to the input; the rows and columns
    with a non-zero gradient are compared with the analytic field clipped to
    the image.
    """
    model = _materialised(model)
    height, width = input_shape[-2], input_shape[-1]
    x = track_input(torch.ones(1, *input_shape, dtype=torch.float64, requires_grad=True))
    hooks = ModuleOutputs(model)
    try:
        with evaluating(model), ReceptiveFieldTracker(positive=True):
            model(x)
    finally:
        hooks.remove()
    fields = {
        name: field for name in hooks.names if (field := field_of(hooks.outputs[name])) is not None
    }
    if layers is None:
        layers = layers_to_check(model, fields)
    unknown = [name for name in layers if name not in fields]
    if unknown:
        raise CnnzooError(
            f"no layer named {', '.join(unknown)} produced a feature map; "
            "run `cnnzoo info MODEL` to see the layer names"
        )
    checks = []
    for name in layers:
        output, field = hooks.outputs[name], fields[name]
        row, column = field.height.units // 2, field.width.units // 2
        (gradient,) = torch.autograd.grad(
            output[0, :, row, column].sum(), x, retain_graph=True, allow_unused=True
        )
        support = (gradient[0].abs().sum(0) > 0) if gradient is not None else None
        box = None
        if support is not None and support.any():
            rows = support.any(1).nonzero().flatten()
            columns = support.any(0).nonzero().flatten()
            box = (int(rows[0]), int(rows[-1]), int(columns[0]), int(columns[-1]))
        top, bottom = field.height.bounds(row)
        left, right = field.width.bounds(column)
        checks.append(
            FieldCheck(
                layer=name,
                unit=(row, column),
                analytic_size=field.size,
                analytic_box=(
                    max(0.0, top),
                    min(height - 1.0, bottom),
                    max(0.0, left),
                    min(width - 1.0, right),
                ),
                gradient_box=box,
                clipped=top < 0 or left < 0 or bottom > height - 1 or right > width - 1,
            )
        )
    return checks
