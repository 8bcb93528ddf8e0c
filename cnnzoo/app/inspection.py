"""The Inspect view's answers: predictions, Grad-CAM, feature maps, receptive fields, SE gates.

Each function takes a cached :class:`~cnnzoo.inference.predictor.Predictor`
and an accepted image, holds the network's lock
(:func:`~cnnzoo.app.networks.network_lock`) while hooks are attached, and
returns plain data with pictures as PNG data URLs. The image is fed as
``cnnzoo explain`` feeds it (:func:`cnnzoo.analysis.explain.prepare_image`):
resized to the training size for classifiers, at its own size for
segmentation networks.

Clicking a unit answers two questions about it:

* its *theoretical* receptive field, the window of input pixels that can
  change it (Araujo et al., Distill 2019), from the same tracker that fills
  the ``receptive field`` column of ``cnnzoo info`` -- so the box's size is
  that column's number, before clipping to the image;
* its *effective* receptive field (Luo et al., "Understanding the Effective
  Receptive Field in Deep Convolutional Neural Networks", NeurIPS 2016,
  arXiv:1701.04128): the gradient of the unit with respect to the input
  pixels. Its support is where the unit can look; its magnitude, usually a
  Gaussian-like bump far smaller than the theoretical box, is where it does.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from cnnzoo.app.networks import network_lock, receptive_fields_of
from cnnzoo.app.uploads import StoredImage
from cnnzoo.errors import CnnzooError

if TYPE_CHECKING:
    from cnnzoo.analysis.gradcam import GradCam
    from cnnzoo.inference.predictor import Predictor

FEATURE_MAPS_SHOWN = 16  # the most active channels of a layer, enough to see what it detects
TOP_K = 5


def png_data_url(pixels: np.ndarray) -> str:
    """A ``data:image/png`` URL of (H, W) or (H, W, 3) uint8 pixels."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _rgb(image: Tensor) -> np.ndarray:
    from cnnzoo.data.mask_pictures import image_to_rgb

    return image_to_rgb(image)


def _heat_overlay(pixels: Tensor, heat: Tensor) -> str:
    """The image with ``heat`` (H, W) in [0, 1] blended over it in the 'jet' colours."""
    from cnnzoo.analysis.gradcam import overlay

    blended = overlay(pixels.clamp(0, 1).cpu(), heat.cpu()).clamp(0, 1)
    return png_data_url((blended.numpy() * 255).round().astype(np.uint8))


def _prepare(network: Predictor, image: StoredImage) -> tuple[Tensor, Tensor]:
    from cnnzoo.analysis.explain import prepare_image

    return prepare_image(network, image.path)


def spatial_layers(network: Predictor, input_shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """The layers whose units can be clicked: a local receptive field over a spatial map."""
    fields = receptive_fields_of(network, input_shape)
    return [
        {"name": name, "height": field.height.units, "width": field.width.units}
        for name, field in fields.items()
        if not field.is_global and field.height.units > 0
    ]


def inspect_image(
    network: Predictor,
    image: StoredImage,
    layer: str | None = None,
    cam_layer: str | None = None,
    topk: int = TOP_K,
) -> dict[str, Any]:
    """What the network makes of ``image``, Grad-CAM at ``cam_layer`` and ``layer``'s maps."""
    from cnnzoo.analysis.gradcam import default_layer
    from cnnzoo.analysis.se_weights import se_blocks

    pixels, batch = _prepare(network, image)
    with network_lock(network):
        layers = spatial_layers(network, tuple(batch.shape[1:]))
        cam_layer = cam_layer or default_layer(network.model, tuple(batch.shape))
        layer = layer or cam_layer
        cam, scores, maps = _one_pass(network, batch, cam_layer, layer)
        blocks = se_blocks(network.model)
    answer: dict[str, Any] = {
        "network": network.name,
        "source": network.source,
        "task": network.task,
        "input": png_data_url(_rgb(pixels)),
        "input_height": int(pixels.shape[1]),
        "input_width": int(pixels.shape[2]),
        "layers": layers,
        "layer": layer,
        "features": _feature_pictures(maps, layer),
        "cam": {
            "layer": cam_layer,
            "class": _class_name(network.class_names, cam.class_index),
            "picture": _heat_overlay(pixels, cam.heatmap),
        },
        "se_blocks": blocks,
    }
    if network.task == "classification":
        probabilities = scores.softmax(0)
        top = probabilities.topk(min(topk, probabilities.numel()))
        answer["predictions"] = [
            {"class": _class_name(network.class_names, i), "probability": float(p)}
            for p, i in zip(top.values.tolist(), top.indices.tolist())
        ]
    else:
        answer["segmentation"] = _segmentation(network.class_names, pixels, scores, image)
    return answer


def _class_name(names: list[str], index: int) -> str:
    return names[index] if index < len(names) else str(index)


def _one_pass(
    network: Predictor, batch: Tensor, cam_layer: str, layer: str
) -> tuple[GradCam, Tensor, Tensor]:
    """Grad-CAM, the class scores and ``layer``'s maps (C, h, w) from one forward pass.

    Grad-CAM's own forward pass also yields the scores and, through one more hook,
    the maps, where asking each instrument separately would run the network three
    times: the difference between a quick answer and a slow one on two cores.
    """
    from cnnzoo.analysis.gradcam import find_layer, grad_cam
    from cnnzoo.analysis.receptive_field import main_tensor

    model = network.model
    captured: dict[str, Tensor | None] = {}

    def keep(key: str):
        def hook(module: object, inputs: object, output: object) -> None:
            tensor = main_tensor(output)
            captured[key] = None if tensor is None else tensor.detach()

        return hook

    handles = [
        find_layer(model, layer).register_forward_hook(keep("maps")),
        model.register_forward_hook(keep("scores")),
    ]
    try:
        cam = grad_cam(model, batch, cam_layer)
    finally:
        for handle in handles:
            handle.remove()
    maps = captured.get("maps")
    if maps is None or maps.dim() != 4:
        raise CnnzooError(
            f"layer {layer!r} does not produce feature maps (N, C, H, W); choose a "
            "convolutional layer (see `cnnzoo info MODEL`)"
        )
    return cam, captured["scores"].float()[0], maps[0].float().cpu()


def _feature_pictures(maps: Tensor, layer: str) -> dict[str, Any]:
    """The most active channels of ``maps``, each scaled to its own range, as grey pictures."""
    from cnnzoo.analysis.feature_maps import most_active

    channels = most_active(maps, min(FEATURE_MAPS_SHOWN, maps.shape[0]))
    pictures = []
    for channel in channels:
        values = maps[channel]
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low) if high > low else torch.zeros_like(values)
        gray = (scaled.numpy() * 255).round().astype(np.uint8)
        pictures.append({"channel": channel, "picture": png_data_url(gray)})
    return {
        "layer": layer,
        "channels": int(maps.shape[0]),
        "height": int(maps.shape[1]),
        "width": int(maps.shape[2]),
        "maps": pictures,
    }


def _segmentation(
    class_names: list[str], pixels: Tensor, scores: Tensor, image: StoredImage
) -> dict[str, Any]:
    """The predicted mask over the image, a legend of the classes in it, IoU given a mask."""
    from cnnzoo.data.mask_pictures import OVERLAY_OPACITY, class_palette

    prediction = scores.argmax(0)
    palette = class_palette(len(class_names))
    colors = palette[prediction.numpy()].astype(np.float32)
    blended = (1 - OVERLAY_OPACITY) * _rgb(pixels).astype(np.float32) + OVERLAY_OPACITY * colors
    present = sorted(set(prediction.unique().tolist()))
    answer: dict[str, Any] = {
        "overlay": png_data_url(blended.round().astype(np.uint8)),
        "legend": [
            {"class": _class_name(class_names, i), "colour": _hex(palette[i])} for i in present
        ],
    }
    if image.mask_path is not None:
        answer["iou"] = _per_class_iou(class_names, prediction, image)
    return answer


def _hex(color: np.ndarray) -> str:
    red, green, blue = (int(c) for c in color)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _per_class_iou(
    class_names: list[str], prediction: Tensor, image: StoredImage
) -> list[dict[str, Any]]:
    from cnnzoo.data.images import read_mask
    from cnnzoo.evaluation.metrics import ConfusionMatrix

    target = torch.from_numpy(read_mask(image.mask_path).astype(np.int64))
    if target.shape != prediction.shape:
        raise CnnzooError("the mask and the network's output differ in size")
    valid = target < len(class_names)  # void labels (255) are left out, as in training
    confusion = ConfusionMatrix(len(class_names))
    confusion.update(prediction[valid], target[valid])
    return [
        {"class": name, "iou": None if iou != iou else float(iou)}
        for name, iou in zip(class_names, confusion.iou().tolist())
    ]


def unit_fields(
    network: Predictor, image: StoredImage, layer: str, row: int, column: int
) -> dict[str, Any]:
    """The theoretical and effective receptive field of unit (``row``, ``column``) of ``layer``."""
    from cnnzoo.analysis.gradcam import find_layer
    from cnnzoo.analysis.receptive_field import main_tensor
    from cnnzoo.measure.modes import evaluating

    pixels, batch = _prepare(network, image)
    with network_lock(network):
        fields = receptive_fields_of(network, tuple(batch.shape[1:]))
        field = fields.get(layer)
        if field is None or field.is_global:
            raise CnnzooError(f"{layer!r} has no spatial map with a receptive field; pick another")
        if not (0 <= row < field.height.units and 0 <= column < field.width.units):
            raise CnnzooError(
                f"unit ({row}, {column}) is outside {layer}'s "
                f"{field.height.units}x{field.width.units} map"
            )
        captured: list[Tensor] = []
        handle = find_layer(network.model, layer).register_forward_hook(
            lambda module, inputs, output: captured.append(main_tensor(output))
        )
        batch = batch.clone().requires_grad_(True)
        try:
            with evaluating(network.model), torch.enable_grad():
                network.model(batch)
                (gradient,) = torch.autograd.grad(captured[-1][0, :, row, column].sum(), batch)
        finally:
            handle.remove()
    top, bottom = field.height.bounds(row)
    left, right = field.width.bounds(column)
    magnitude = gradient[0].abs().sum(0)
    return {
        "layer": layer,
        "row": row,
        "column": column,
        # Pixel indices of the first and last row and column the unit sees, unclipped.
        "theoretical": {
            "top": top,
            "bottom": bottom,
            "left": left,
            "right": right,
            "height": field.height.extent,
            "width": field.width.extent,
            "exact": field.exact,
            "global_context": field.global_context,
        },  # fmt: skip
        "effective": _effective(pixels, magnitude),
    }


def _effective(pixels: Tensor, magnitude: Tensor) -> dict[str, Any]:
    """The gradient's support (bounding box of non-zero pixels) and magnitude as a heat overlay."""
    support = magnitude > 0
    if not support.any():
        return {"box": None, "picture": _heat_overlay(pixels, magnitude), "peak": 0.0}
    rows = support.any(1).nonzero().flatten()
    columns = support.any(0).nonzero().flatten()
    peak = float(magnitude.max())
    # A square root keeps the faint tails visible beside the bright centre.
    heat = (magnitude / peak).sqrt()
    return {
        "box": {
            "top": int(rows[0]),
            "bottom": int(rows[-1]),
            "left": int(columns[0]),
            "right": int(columns[-1]),
        },  # fmt: skip
        "picture": _heat_overlay(pixels, heat),
        "peak": peak,
    }


def se_gates(network: Predictor, image: StoredImage, block: str | None) -> dict[str, Any]:
    """The squeeze-and-excitation gate of every channel of ``block`` (default: the last)."""
    from cnnzoo.analysis.se_weights import resolve_se_block, se_channel_weights

    _, batch = _prepare(network, image)
    with network_lock(network):
        block = resolve_se_block(network.model, block)
        weights = se_channel_weights(network.model, batch, block)
    return {"block": block, "gates": [round(float(w), 4) for w in weights]}
