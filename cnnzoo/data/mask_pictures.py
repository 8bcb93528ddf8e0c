"""Colour-coded masks and overlays of a segmentation network's predictions.

``cnnzoo predict`` calls :func:`save_prediction` for every image. The mask is
written as a palette PNG: it shows the classes in distinct colours *and*
stores the class index of every pixel, so it can be read back as a label map
(``numpy.array(PIL.Image.open(path))``). The colours are PASCAL VOC's, the
palette most segmentation data sets and tools share.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from cnnzoo.errors import CnnzooError

OVERLAY_OPACITY = 0.5  # weight of the mask colours in the overlay
LEGEND_ROW_HEIGHT = 14  # pixels per class name under the overlay


def class_palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 colours: the PASCAL VOC colour map (0 black, 1 dark red, ...).

    VOC spreads the bits of the class index over the high bits of the three
    channels, so neighbouring indices get clearly different colours.
    """
    palette = np.zeros((num_classes, 3), np.uint8)
    for index in range(num_classes):
        value, red, green, blue = index, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= (value & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = red, green, blue
    return palette


def mask_image(mask: np.ndarray, palette: np.ndarray) -> Image.Image:
    """A palette PNG of a label map (RGB when there are more classes than a palette holds)."""
    if len(palette) > 256:
        return Image.fromarray(palette[mask])
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(palette.flatten().tolist())
    return image


def image_to_rgb(image: Tensor) -> np.ndarray:
    """(H, W, 3) uint8 of a (C, H, W) image in [0, 1]; other ranges are rescaled to it."""
    if image.dim() != 3:
        raise CnnzooError(f"expected an image shaped (C, H, W), got {tuple(image.shape)}")
    pixels = image.detach().float().cpu()
    pixels = pixels.expand(3, -1, -1) if pixels.shape[0] == 1 else pixels[:3]
    if pixels.shape[0] < 3:
        pixels = pixels.mean(0, keepdim=True).expand(3, -1, -1)
    low, high = pixels.min(), pixels.max()
    if low < 0 or high > 1:
        pixels = (pixels - low) / (high - low).clamp_min(1e-8)
    return (pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def add_legend(
    overlay: Image.Image, classes: Sequence[int], names: Sequence[str], palette: np.ndarray
) -> Image.Image:
    """The overlay with a colour swatch and the name of each predicted class below it."""
    font = ImageFont.load_default()
    width = max(overlay.width, 20 + max(int(font.getlength(names[c])) for c in classes))
    canvas = Image.new("RGB", (width, overlay.height + LEGEND_ROW_HEIGHT * len(classes)), "white")
    canvas.paste(overlay, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for row, index in enumerate(classes):
        top = overlay.height + row * LEGEND_ROW_HEIGHT
        color = tuple(int(c) for c in palette[index])
        draw.rectangle((2, top + 2, 12, top + LEGEND_ROW_HEIGHT - 2), fill=color, outline="black")
        draw.text((16, top + 1), names[index], fill="black", font=font)
    return canvas


def save_prediction(
    image: Tensor,
    mask_logits: Tensor,
    class_names: Sequence[str],
    out_dir: str | Path,
    stem: str,
) -> list[Path]:
    """Write ``STEM_mask.png`` (colour-coded class indices) and ``STEM_overlay.png``.

    Args:
        image: the (C, H, W) input image, values in [0, 1].
        mask_logits: the network's (K, H, W) scores for the image.
        class_names: K names, listed under the overlay for the classes present.
        out_dir: folder to write to (created if missing).
        stem: file name stem, usually the input image's.

    Returns:
        The paths written: the mask, then the overlay.
    """
    if mask_logits.dim() != 3:
        raise CnnzooError(f"expected mask logits shaped (K, H, W), got {tuple(mask_logits.shape)}")
    if image.shape[-2:] != mask_logits.shape[-2:]:
        raise CnnzooError(
            f"image size {tuple(image.shape[-2:])} and mask size "
            f"{tuple(mask_logits.shape[-2:])} differ"
        )
    num_classes = mask_logits.shape[0]
    if len(class_names) != num_classes:
        raise CnnzooError(
            f"{len(class_names)} class names for a {num_classes}-class prediction; "
            "give one name per output channel"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mask = torch.argmax(mask_logits.detach().float(), dim=0).cpu().numpy()
    palette = class_palette(num_classes)
    mask_path, overlay_path = out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png"
    mask_image(mask, palette).save(mask_path)
    blended = (1 - OVERLAY_OPACITY) * image_to_rgb(image) + OVERLAY_OPACITY * palette[mask]
    overlay = Image.fromarray(blended.round().astype(np.uint8))
    add_legend(overlay, sorted(np.unique(mask).tolist()), class_names, palette).save(overlay_path)
    return [mask_path, overlay_path]
