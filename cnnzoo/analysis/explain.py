"""One image through a network, explained: Grad-CAM, feature maps or SE channel weights.

Shared by ``cnnzoo explain`` and the Python API: loads the network (trained
from a run directory, or random from a name), feeds the image as in training
(resized to the training size for classifiers, normalised with the training
statistics) and writes one PNG.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from cnnzoo.analysis.feature_maps import feature_maps, save_feature_grid
from cnnzoo.analysis.gradcam import default_layer, grad_cam, save_grad_cam
from cnnzoo.analysis.se_weights import resolve_se_block, save_se_weights, se_channel_weights
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.predictor import Predictor

METHODS = ("gradcam", "features", "se")


def prepare_image(analyzed: Predictor, path: Path) -> tuple[Tensor, Tensor]:
    """(pixels in [0, 1] as (C, H, W), the network's input (1, C, H, W))."""
    from cnnzoo.data.images import image_tensor, read_image
    from cnnzoo.data.transforms import resize_images

    channels, height, width = analyzed.example_shape
    pixels = image_tensor(read_image(path, channels))
    if analyzed.task == "classification":
        pixels = resize_images(pixels.unsqueeze(0), (height, width))[0].clamp(0, 1)
    batch = pixels.unsqueeze(0)
    normalization = analyzed.preprocessing.normalization
    if normalization is not None:
        batch = normalization.apply(batch)
    return pixels, batch.to(analyzed.device)


def explain(
    source: str,
    image_path: Path,
    method: str = "gradcam",
    layer: str | None = None,
    class_index: int | None = None,
    out_dir: Path = Path("explain"),
) -> Path:
    """Write ``IMAGE_METHOD_LAYER.png`` into ``out_dir`` and return its path."""
    if method not in METHODS:
        raise CnnzooError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if class_index is not None and method != "gradcam":
        raise CnnzooError("--class applies to --method gradcam only")
    analyzed = Predictor.load(source)
    pixels, batch = prepare_image(analyzed, Path(image_path))
    model = analyzed.model
    stem = Path(image_path).stem
    if method == "se":
        block = resolve_se_block(model, layer)
        weights = se_channel_weights(model, batch, block)
        path = out_dir / f"{stem}_se_{block}.png"
        title = f"{analyzed.name}: SE channel weights of {block} ({len(weights)} channels)"
        return save_se_weights(weights.cpu(), path, title)
    layer = layer or default_layer(model, tuple(batch.shape))
    if method == "features":
        maps = feature_maps(model, batch, layer).cpu()
        title = f"{analyzed.name}: {layer}, {maps.shape[0]} maps of {maps.shape[1]}x{maps.shape[2]}"
        return save_feature_grid(maps, out_dir / f"{stem}_features_{layer}.png", title)
    result = grad_cam(model, batch, layer, class_index)
    names = analyzed.class_names
    class_name = names[result.class_index] if result.class_index < len(names) else "?"
    return save_grad_cam(pixels.cpu(), result, out_dir / f"{stem}_gradcam_{layer}.png", class_name)
