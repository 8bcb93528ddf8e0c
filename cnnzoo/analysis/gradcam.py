"""Grad-CAM: which parts of the image made the network choose a class.

Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017, arXiv:1610.02391.

A late convolutional layer keeps *where* things are and already knows *what*
they are. Grad-CAM weighs each of its channels by how much the class score
grows with it -- the gradient of the score averaged over the map -- sums the
weighted channels and keeps the positive part:

    alpha_k = mean_ij d score / d A_k[i, j],    cam = relu(sum_k alpha_k A_k)

The map is upsampled bilinearly to the image and scaled to [0, 1]. For a
segmentation network the score is the class's logit summed over all pixels.
Written here in a few lines rather than taken from the ``grad-cam`` package,
which would bring OpenCV along for the colour map alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.analysis.figures import save_figure
from cnnzoo.analysis.receptive_field import main_tensor
from cnnzoo.errors import CnnzooError
from cnnzoo.measure.modes import evaluating


@dataclass(frozen=True)
class GradCam:
    heatmap: Tensor  # (H, W) in [0, 1], the image's size
    class_index: int  # the class explained
    score: float  # its logit
    layer: str


def default_layer(model: nn.Module, image_shape: tuple[int, ...]) -> str:
    """The layer to explain when none is named: the last stage, or the module before the head.

    Its maps are the coarsest the network has before pooling them away, so they
    hold the most abstract features that still say where things are.
    """
    modules = dict(model.named_modules())
    stages = [info.name for info in getattr(model, "feature_info", []) if info.name in modules]
    if stages:
        return stages[-1]
    from cnnzoo.analysis.receptive_field import receptive_fields

    fields = receptive_fields(model, image_shape[-3:])
    top_level = [n for n, f in fields.items() if "." not in n and not f.is_global]
    if not top_level:
        raise CnnzooError("the model has no layer with a spatial feature map to explain")
    # The last top-level module is the head (class scores); the one before it holds features.
    return top_level[-2] if len(top_level) > 1 else top_level[-1]


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``, or an error that lists similar names."""
    import difflib

    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.5)
    hint = f" Similar: {', '.join(close)}." if close else ""
    raise CnnzooError(
        f"the model has no layer {name!r}.{hint} Run `cnnzoo info MODEL` to see the layer names"
    )


def grad_cam(
    model: nn.Module, image: Tensor, layer: str, class_index: int | None = None
) -> GradCam:
    """Grad-CAM of ``image`` (1, C, H, W) at ``layer`` for ``class_index`` (default: top class)."""
    target = find_layer(model, layer)
    captured: list[Tensor] = []

    def keep(module: nn.Module, inputs: object, output: object) -> None:
        tensor = main_tensor(output)
        if tensor is not None:
            captured.append(tensor)

    handle = target.register_forward_hook(keep)
    try:
        with evaluating(model), torch.enable_grad():
            output = main_tensor(model(image))
    finally:
        handle.remove()
    if not captured or captured[-1].dim() != 4:
        raise CnnzooError(
            f"layer {layer!r} does not produce a feature map (N, C, H, W); choose a "
            "convolutional layer, e.g. the last stage"
        )
    activation = captured[-1]
    if class_index is None:  # the top class; for segmentation, the one with most total score
        class_index = int(output[0].reshape(output.shape[1], -1).sum(1).argmax())
    if not 0 <= class_index < output.shape[1]:
        raise CnnzooError(f"--class must be in 0..{output.shape[1] - 1}, got {class_index}")
    score = output[0, class_index].sum()
    (gradient,) = torch.autograd.grad(score, activation)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    heatmap = cam / peak if peak > 0 else cam
    return GradCam(heatmap, class_index, float(score.detach()), layer)


def overlay(image: Tensor, heatmap: Tensor, opacity: float = 0.5) -> Tensor:
    """The image (C, H, W) in [0, 1] blended with the heat map coloured by 'jet': (H, W, 3)."""
    from matplotlib import colormaps

    rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    colors = torch.from_numpy(colormaps["jet"](heatmap.numpy())[..., :3]).float()
    return (1 - opacity) * rgb.permute(1, 2, 0) + opacity * colors


def save_grad_cam(image: Tensor, result: GradCam, path: Path, class_name: str) -> Path:
    """Three panels -- the image, the heat map, the overlay -- as one PNG."""
    from matplotlib.figure import Figure

    shown = image.clamp(0, 1)
    figure = Figure(figsize=(9, 3.4), dpi=100)
    axes = figure.subplots(1, 3)
    if shown.shape[0] == 1:
        axes[0].imshow(shown[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        axes[0].imshow(shown[:3].permute(1, 2, 0).numpy())
    axes[0].set_title("input")
    heat = axes[1].imshow(result.heatmap.numpy(), cmap="jet", vmin=0, vmax=1)
    axes[1].set_title(f"Grad-CAM at {result.layer}", fontsize=9)
    figure.colorbar(heat, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].imshow(overlay(shown, result.heatmap).numpy())
    axes[2].set_title(f"class {class_name} (score {result.score:.2f})", fontsize=9)
    for axis in axes:
        axis.axis("off")
    return save_figure(figure, path)
