"""Losses for both tasks, and the class-balancing weights of SegNet.

* Cross-entropy with class weights, a void label and label smoothing
  (Szegedy et al. 2016, "Rethinking the Inception Architecture", arXiv:1512.00567),
  against class indices or against soft targets: the class probabilities
  MixUp and CutMix make by blending two samples' labels (Zhang et al. 2017,
  arXiv:1710.09412; Yun et al. 2019, arXiv:1905.04899).
* Mean-squared error on one-hot targets of +-1, the criterion LeCun et al.
  trained the 1989 zip-code network with (its tanh outputs range over [-1, 1]).
* Dice loss, one minus the soft Dice overlap averaged over classes
  (Milletari et al. 2016, "V-Net", arXiv:1606.04797), for unbalanced masks.
* U-Net's border-weighted cross-entropy (Ronneberger et al. 2015, arXiv:1505.04597,
  eq. 2): each pixel's loss times a weight map that balances the classes and
  stresses the thin gaps between touching objects (w0 = 10, sigma = 5 px).
* Median-frequency balancing (Eigen & Fergus 2015, used by SegNet,
  Badrinarayanan et al. 2015, arXiv:1511.00561): weight(c) = median_freq / freq(c).

Each loss takes scores (N, K) or (N, K, H, W) and targets (N,) or (N, H, W);
cross-entropy also takes float soft targets shaped like the scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from cnnzoo.data.protocol import SegmentationSplit
from cnnzoo.errors import CnnzooError

LossFunction = Callable[[Tensor, Tensor], Tensor]


def cross_entropy_loss(
    class_weights: Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> LossFunction:
    def loss(scores: Tensor, target: Tensor) -> Tensor:
        weight = None if class_weights is None else class_weights.to(scores.device, scores.dtype)
        if target.is_floating_point():  # probabilities: no label can be void
            return F.cross_entropy(scores, target, weight=weight, label_smoothing=label_smoothing)
        return F.cross_entropy(
            scores,
            target,
            weight=weight,
            ignore_index=-100 if ignore_index is None else ignore_index,
            label_smoothing=label_smoothing,
        )

    return loss


def mse_loss(ignore_index: int | None = None) -> LossFunction:
    """Squared error against +1 for the true class and -1 for the others (LeCun 1989)."""

    def loss(scores: Tensor, target: Tensor) -> Tensor:
        keep = _valid(target, ignore_index)
        signs = _one_hot(target.masked_fill(~keep, 0), scores.shape[1], scores.dtype) * 2 - 1
        squared = (scores - signs).pow(2).mean(1)
        return squared[keep].mean()

    return loss


def dice_loss(ignore_index: int | None = None, smooth: float = 1.0) -> LossFunction:
    """1 - mean over classes of 2|P∩T| / (|P| + |T|) with softmax probabilities P."""

    def loss(scores: Tensor, target: Tensor) -> Tensor:
        valid = _valid(target, ignore_index)
        keep = valid.unsqueeze(1).to(scores.dtype)
        probabilities = scores.float().softmax(1) * keep
        truth = _one_hot(target.masked_fill(~valid, 0), scores.shape[1], probabilities.dtype) * keep
        dims = [0, *range(2, scores.dim())]
        intersection = (probabilities * truth).sum(dims)
        sizes = probabilities.sum(dims) + truth.sum(dims)
        return 1 - ((2 * intersection + smooth) / (sizes + smooth)).mean()

    return loss


def border_weighted_loss(
    ignore_index: int | None = None, w0: float = 10.0, sigma: float = 5.0
) -> LossFunction:
    """Cross-entropy weighted per pixel by U-Net's map, computed from each target mask.

    The map (:func:`border_weight_map`) is made from
    the mask the network is trained on *after* augmentation, so the weights
    follow every crop, flip and rescale. Class 0 is the background whose thin
    gaps between objects are stressed (ISBI 2012: the membranes).
    """

    def loss(scores: Tensor, target: Tensor) -> Tensor:
        if target.dim() != 3:
            raise CnnzooError("--loss border weights pixels: it needs segmentation masks")
        weights = border_weight_maps(target, w0=w0, sigma=sigma, ignore_index=ignore_index)
        per_pixel = F.cross_entropy(
            scores,
            target,
            ignore_index=-100 if ignore_index is None else ignore_index,
            reduction="none",
        )
        return (per_pixel * weights.to(per_pixel.dtype)).mean()

    return loss


def border_weight_map(
    mask: np.ndarray | Tensor,
    w0: float = 10.0,
    sigma: float = 5.0,
    background: int = 0,
    ignore_index: int | None = None,
) -> Tensor:
    """The paper's loss weight map (eq. 2): w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / 2 sigma^2).

    ``w_c`` balances the class frequencies (every class present gets the same
    total weight, so the map averages 1 before the border term); ``d1`` and
    ``d2`` are the distances to the border of the nearest and second nearest
    object (connected region of a class other than ``background``), so pixels
    of the thin gaps between touching objects weigh up to 1 + w0. The paper
    sets w0 = 10 and sigma ~ 5 pixels (§3). ``ignore_index`` pixels weigh 0.

    Args:
        mask: (H, W) class-index label map.

    Returns:
        A float32 (H, W) tensor: multiply the per-pixel cross-entropy by it.
    """
    labels = mask.numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if labels.ndim != 2:
        raise CnnzooError(f"border_weight_map expects an (H, W) mask, got shape {labels.shape}")
    valid = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    weights = np.zeros(labels.shape, np.float64)
    classes, counts = np.unique(labels[valid], return_counts=True)
    for value, count in zip(classes, counts):
        weights[labels == value] = valid.sum() / (len(classes) * count)
    nearest, second = _two_nearest_object_distances(
        (labels != background) & valid, sigma * math.sqrt(2 * math.log(1e4))
    )
    gap = (labels == background) & valid
    weights[gap] += w0 * np.exp(-((nearest[gap] + second[gap]) ** 2) / (2 * sigma**2))
    return torch.from_numpy(weights.astype(np.float32))


def border_weight_maps(masks: Tensor, **options: float | int | None) -> Tensor:
    """:func:`border_weight_map` of each (H, W) mask of an (N, H, W) batch."""
    return torch.stack([border_weight_map(m.cpu(), **options) for m in masks]).to(masks.device)


def _two_nearest_object_distances(objects: np.ndarray, reach: float) -> tuple[np.ndarray, ...]:
    """Per pixel, the distances to the nearest and second nearest connected object.

    Each object's distance transform is computed in its bounding box widened
    by ``reach`` only: beyond it the weight term is negligible (below
    w0 * 1e-4 for the default ``reach``), which keeps this fast for images
    with hundreds of cells. Pixels out of reach of an object get infinity.
    """
    components, _ = ndimage.label(objects)
    nearest = np.full(objects.shape, np.inf)
    second = np.full(objects.shape, np.inf)
    margin = math.ceil(reach)
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        window = tuple(
            slice(max(s.start - margin, 0), min(s.stop + margin, n))
            for s, n in zip(box, objects.shape)
        )
        distance = ndimage.distance_transform_edt(components[window] != index)
        near, next_near = nearest[window], second[window]  # views: updated in place
        next_near[...] = np.where(distance < near, near, np.minimum(next_near, distance))
        near[...] = np.minimum(near, distance)
    return nearest, second


def build_loss(
    name: str,
    *,
    class_weights: Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> LossFunction:
    """The loss a configuration names (``ce``, ``mse``, ``dice`` or ``border``)."""
    if name == "ce":
        return cross_entropy_loss(class_weights, ignore_index, label_smoothing)
    if class_weights is not None or label_smoothing:
        raise CnnzooError(f"class weights and label smoothing apply to --loss ce, not {name}")
    if name == "mse":
        return mse_loss(ignore_index)
    if name == "dice":
        return dice_loss(ignore_index)
    if name == "border":
        return border_weighted_loss(ignore_index)
    raise CnnzooError(f"unknown loss {name!r}; choose ce, mse, dice or border")


def median_frequency_weights(
    masks: Iterable[Tensor], num_classes: int, ignore_index: int | None = None
) -> Tensor:
    """SegNet's class weights from label masks.

    freq(c) is the number of pixels of class c divided by the number of pixels
    in the images where c is present; each weight is median(freq) / freq(c), so
    rare classes (poles, signs) count as much as common ones (road, sky).
    Classes that never occur get weight 0.
    """
    pixels = torch.zeros(num_classes, dtype=torch.float64)
    pixels_of_images_with = torch.zeros(num_classes, dtype=torch.float64)
    for mask in masks:
        mask = torch.as_tensor(mask).reshape(-1).long()
        valid = mask[(mask >= 0) & (mask < num_classes)]
        if ignore_index is not None:
            valid = valid[valid != ignore_index]
        counts = torch.bincount(valid, minlength=num_classes).double()
        pixels += counts
        pixels_of_images_with += (counts > 0).double() * valid.numel()
    present = pixels > 0
    if not present.any():
        raise CnnzooError("the masks contain no labelled pixels; cannot compute class weights")
    frequency = torch.zeros(num_classes, dtype=torch.float64)
    frequency[present] = pixels[present] / pixels_of_images_with[present]
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = frequency[present].quantile(0.5) / frequency[present]
    return weights.float()


def _valid(target: Tensor, ignore_index: int | None) -> Tensor:
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


def _one_hot(target: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """(N, ...) labels to (N, K, ...) one-hot, channel second like the scores."""
    encoded = F.one_hot(target, num_classes).to(dtype)
    return encoded.movedim(-1, 1)


def training_masks(dataset: SegmentationSplit) -> Iterable[Tensor]:
    """Every label mask of a segmentation training set, before augmentation."""
    return dataset.iter_masks()
