"""Image preparation and augmentation on whole batches of tensors.

Small data sets are decoded once and kept as one uint8 tensor, so nothing is
decoded per sample per epoch; resizing and grey/colour conversion use
``torchvision.transforms.v2.functional`` on the whole stack (imported when
first needed: torchvision takes seconds to import). Augmentation is
drawn per sample but applied to the batch at once: every image gets its own
random affine map (shift, and for ``affine`` and ``strong`` also rotation and scale), all
resampled by a single ``grid_sample`` call, and a label mask goes through the
same map with nearest-neighbour sampling so image and mask stay aligned.

The policies follow the papers' practice: ``basic`` is the 4-pixel shift and
horizontal flip of He et al. 2015 (sec. 4.2, CIFAR-10) scaled to the image
side, and ``pad-crop`` is the same shifts and flips by name, which a folder
streamed from disk also applies as the paper's pad-and-crop
(:mod:`cnnzoo.data.streaming`) instead of a RandomResizedCrop; ``affine``
adds rotations up to 15 degrees and scale changes of 10 %;
``strong`` adds random erasing to those (Zhong et al. 2017, arXiv:1708.04896),
which on digits can blank the stroke that decides the class. Flips are used only
where they preserve the label (not for digits: a mirrored 2 is no 2).

The post-2017 recipes add three options on top of a policy. RandomResizedCrop
(Szegedy et al. 2014, arXiv:1409.4842, sec. 6; torchvision's ``scale=(0.08, 1)``,
``ratio=(3/4, 4/3)``) takes the place of the shifts: each sample gets its own
box, and all boxes are resampled to the training size by the same single
``grid_sample`` (bilinear, without the antialiasing of a per-image resize).
AutoAugment (Cubuk et al. 2018, arXiv:1805.09501), RandAugment (Cubuk et al.
2019, arXiv:1909.13719) and TrivialAugment (Muller & Hutter 2021,
arXiv:2103.10158, torchvision's ``TrivialAugmentWide``) and random erasing
(torchvision's ``RandomErasing``: 2-33 % of the area, aspect 0.3-3.3, erased
to 0 after normalisation, i.e. to the mean colour) are torchvision's own v2
transforms, applied per sample: their operations differ per image.
Their random draws are seeded from the batch's generator, so an epoch is
fixed by (seed, epoch) whatever the number of processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.data.base import DataRequest
from cnnzoo.errors import CnnzooError

# RandomResizedCrop's ranges in torchvision's reference recipe (and Szegedy et al. 2014).
CROP_AREA = (0.08, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)


@dataclass(frozen=True)
class AugmentPolicy:
    """How much each sample may be distorted."""

    shift: float = 0.0  # largest shift, as a fraction of the side (whole pixels)
    rotation: float = 0.0  # largest rotation in degrees
    scale: float = 0.0  # largest relative zoom in or out
    flip: bool = False  # mirror half the samples left-right
    erase: float = 0.0  # probability of blanking one random rectangle
    resized_crop: bool = False  # RandomResizedCrop instead of shifts, rotation and zoom
    auto_augment: str = "none"  # none | autoaugment | randaugment | trivialaugment
    random_erasing: float = 0.0  # torchvision's RandomErasing, after normalisation
    pad_crop: bool = False  # streamed: the shifts as pad-and-crop, not RandomResizedCrop

    @property
    def is_identity(self) -> bool:
        geometric = self.shift or self.rotation or self.scale or self.flip or self.resized_crop
        return not (geometric or self.erase or self.auto_augment != "none")


def augment_policy(name: str, mirror_invariant: bool) -> AugmentPolicy:
    """The policy behind ``--augment none|basic|pad-crop|affine|strong`` for a data set.

    ``pad-crop`` draws exactly as ``basic`` does in memory; it only tells a
    streamed folder to pad and crop (He et al. 2015) instead of RandomResizedCrop.
    """
    if name == "none":
        return AugmentPolicy()
    # He et al. 2015: pad 4 pixels of a 32-pixel side and crop back = a shift of 1/8.
    basic = AugmentPolicy(shift=1 / 8, flip=mirror_invariant)
    if name == "basic":
        return basic
    if name == "pad-crop":
        return replace(basic, pad_crop=True)
    # Geometric distortions only: what a scanned digit may undergo without changing class.
    affine = AugmentPolicy(shift=basic.shift, rotation=15.0, scale=0.1, flip=mirror_invariant)
    if name == "affine":
        return affine
    if name == "strong":
        return replace(affine, erase=0.5)
    raise CnnzooError(
        f"unknown augmentation {name!r}; choose none, basic, pad-crop, affine or strong"
    )


def training_policy(request: DataRequest, mirror_invariant: bool) -> AugmentPolicy:
    """The training split's policy: ``request.augment`` plus the recipe options it asks for."""
    return replace(
        augment_policy(request.augment, mirror_invariant),
        resized_crop=request.random_resized_crop,
        auto_augment=request.auto_augment,
        random_erasing=request.random_erasing,
    )


def convert_channels(images: Tensor, channels: int) -> Tensor:
    """(N, C, H, W) images with C in {1, 3, 4} converted to ``channels`` (1 or 3)."""
    if images.shape[1] == 4:  # drop an alpha channel
        images = images[:, :3]
    if images.shape[1] == channels:
        return images
    if channels == 3 and images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and images.shape[1] == 3:
        from torchvision.transforms.v2 import functional as TF

        return TF.rgb_to_grayscale(images, num_output_channels=1)
    raise CnnzooError(f"cannot convert {images.shape[1]}-channel images to {channels} channels")


def resize_images(images: Tensor, size: tuple[int, int], chunk: int = 2048) -> Tensor:
    """Resize a uint8 or float stack to ``size`` (H, W) with antialiased bilinear filtering."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    from torchvision.transforms.v2 import functional as TF

    return torch.cat([TF.resize(part, list(size), antialias=True) for part in images.split(chunk)])


def resize_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize (N, H, W) label masks with nearest-neighbour sampling (labels are not numbers)."""
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    from torchvision.transforms.v2 import functional as TF

    resized = TF.resize(masks.unsqueeze(1), list(size), TF.InterpolationMode.NEAREST_EXACT)
    return resized.squeeze(1)


def channel_statistics(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images, scaled to [0, 1]."""
    values = images.float().div(255).transpose(0, 1).reshape(images.shape[1], -1)
    std = values.std(1).clamp(min=1e-3)
    return values.mean(1).tolist(), std.tolist()


def augment_batch(
    images: Tensor,
    masks: Tensor | None,
    policy: AugmentPolicy,
    generator: torch.Generator | None = None,
    ignore_index: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Apply ``policy`` to images (N, C, H, W) and, if given, label masks (N, H, W).

    Shifts and flips keep the images' dtype (uint8 stays uint8); rotation and
    scaling resample, returning float images on the same 0..255 or 0..1 scale.
    Pixels shifted in from outside the image are black; in a mask they become
    ``ignore_index`` (or 0 when there is none).
    """
    if policy.is_identity:
        return images, masks
    outside = ignore_index if ignore_index is not None else 0
    if policy.resized_crop:
        theta = _random_resized_crops(images.shape, policy.flip, generator)
        images, masks = _warp(images, masks, theta, outside)
    elif policy.rotation or policy.scale:
        count, _, height, width = images.shape
        theta = _random_affine(count, height, width, policy, generator)
        images, masks = _warp(images, masks, theta, outside)
    elif policy.shift or policy.flip:
        images, masks = _shift_and_flip(images, masks, policy, generator, outside)
    if policy.erase:
        images = _random_erase(images, policy.erase, generator)
    if policy.auto_augment != "none":
        images = _auto_augment(images, policy.auto_augment, generator)
    return images, masks


def random_erasing(images: Tensor, probability: float, generator: torch.Generator | None) -> Tensor:
    """torchvision's RandomErasing on each normalised image; 0 erases to the mean colour."""
    if not probability:
        return images
    from torchvision.transforms import v2

    return _per_sample(v2.RandomErasing(p=probability), images, generator)


def auto_augment_transform(name: str) -> torch.nn.Module:
    """The v2 policy behind ``--auto-augment NAME``, applied to one uint8 image at a time."""
    from torchvision.transforms import v2

    policies = {
        "autoaugment": v2.AutoAugment,
        "randaugment": v2.RandAugment,
        "trivialaugment": v2.TrivialAugmentWide,
    }
    if name not in policies:
        raise CnnzooError(f"unknown auto-augment policy {name!r}; choose {', '.join(policies)}")
    return policies[name]()


@contextmanager
def seeded_torch_draws(seed: int) -> Iterator[None]:
    """Torch's global CPU generator seeded with ``seed`` inside the block, restored after it.

    v2 transforms draw from torch's global generator; setting it aside keeps
    them from moving the caller's stream and ties their draws to ``seed``.
    Only the CPU generator is touched: ``torch.manual_seed`` would seed every
    device as well, and costs 0.45 ms against 0.03 ms here, per image.
    """
    generator = torch.default_generator
    state = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(state)


def _auto_augment(images: Tensor, name: str, generator: torch.Generator | None) -> Tensor:
    """The named v2 policy on each image, on uint8 as torchvision applies it."""
    transform = auto_augment_transform(name)
    if images.dtype != torch.uint8:  # resampled by a crop or a warp: back to bytes
        images = images.round().clamp(0, 255).to(torch.uint8)
    return _per_sample(transform, images, generator)


def _per_sample(
    transform: torch.nn.Module, images: Tensor, generator: torch.Generator | None
) -> Tensor:
    """``transform`` on each image, its random draws seeded from ``generator``."""
    with seeded_torch_draws(int(torch.randint(2**62, (1,), generator=generator))):
        return torch.stack([transform(image) for image in images])


def _random_resized_crops(
    shape: torch.Size, flip: bool, generator: torch.Generator | None, tries: int = 10
) -> Tensor:
    """One (2, 3) sampling matrix per sample: a RandomResizedCrop box, mirrored half the time.

    As torchvision draws it: up to ``tries`` boxes of a random share of the
    area and a log-uniform aspect, the first that fits; when none fits, the
    largest centred box of an aspect inside the range.
    """
    count, _, height, width = shape
    area = height * width * torch.empty(count, tries).uniform_(*CROP_AREA, generator=generator)
    log_aspect = torch.empty(count, tries).uniform_(
        *map(math.log, CROP_ASPECT), generator=generator
    )
    box_w = (area * log_aspect.exp()).sqrt().round()
    box_h = (area / log_aspect.exp()).sqrt().round()
    fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    first = fits.float().argmax(1, keepdim=True)  # the first box that fits (0 when none does)
    box_w, box_h = box_w.gather(1, first).squeeze(1), box_h.gather(1, first).squeeze(1)
    aspect = min(max(width / height, CROP_ASPECT[0]), CROP_ASPECT[1])
    fallback_w, fallback_h = min(width, round(height * aspect)), min(height, round(width / aspect))
    none_fits = ~fits.any(1)
    box_w = torch.where(none_fits, float(fallback_w), box_w)
    box_h = torch.where(none_fits, float(fallback_h), box_h)
    top = (torch.rand(count, generator=generator) * (height - box_h + 1)).floor()
    left = (torch.rand(count, generator=generator) * (width - box_w + 1)).floor()
    top = torch.where(none_fits, ((height - box_h) / 2).floor(), top)
    left = torch.where(none_fits, ((width - box_w) / 2).floor(), left)
    mirror = torch.ones(count)
    if flip:
        mirror = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
    # In affine_grid's coordinates (-1 and 1 are the outer pixel edges): centre and half-extent.
    center_x, center_y = (left + box_w / 2) * 2 / width - 1, (top + box_h / 2) * 2 / height - 1
    zero = torch.zeros(count)
    first_row = torch.stack([box_w / width * mirror, zero, center_x], 1)
    second_row = torch.stack([zero, box_h / height, center_y], 1)
    return torch.stack([first_row, second_row], 1)


def _shift_and_flip(
    images: Tensor,
    masks: Tensor | None,
    policy: AugmentPolicy,
    generator: torch.Generator | None,
    outside: int,
) -> tuple[Tensor, Tensor | None]:
    """Whole-pixel shifts and mirroring as one gather, in the images' own dtype.

    Each output pixel reads one source pixel; pixels whose source lies outside
    the image read an extra zero pixel appended to every image.
    """
    count, channels, height, width = images.shape
    limit_y, limit_x = round(policy.shift * height), round(policy.shift * width)
    shift_y = torch.randint(-limit_y, limit_y + 1, (count, 1), generator=generator)
    shift_x = torch.randint(-limit_x, limit_x + 1, (count, 1), generator=generator)
    rows = torch.arange(height) - shift_y  # (N, H): the source row of each output row
    cols = torch.arange(width) - shift_x
    if policy.flip:
        mirrored = torch.rand(count, 1, generator=generator) < 0.5
        cols = torch.where(mirrored, width - 1 - cols, cols)
    inside = ((rows >= 0) & (rows < height)).unsqueeze(2) & (
        (cols >= 0) & (cols < width)
    ).unsqueeze(1)
    source = (rows.unsqueeze(2) * width + cols.unsqueeze(1)).masked_fill_(~inside, height * width)
    source = source.view(count, 1, height * width)
    flat = F.pad(images.reshape(count, channels, height * width), (0, 1))
    images = flat.gather(2, source.expand(-1, channels, -1)).view_as(images)
    if masks is not None:
        flat_masks = F.pad(masks.reshape(count, height * width), (0, 1), value=outside)
        masks = flat_masks.gather(1, source.squeeze(1)).view_as(masks)
    return images, masks


def _warp(
    images: Tensor, masks: Tensor | None, theta: Tensor, outside: int
) -> tuple[Tensor, Tensor | None]:
    """Each sample moved by its own (2, 3) affine map ``theta``, resampled by one grid_sample.

    The maps carry rotation, zoom, shift and mirroring (:func:`_random_affine`).
    """
    count, _, height, width = images.shape
    grid = F.affine_grid(theta, [count, 1, height, width], align_corners=False)
    images = F.grid_sample(images.float(), grid, mode="bilinear", align_corners=False)
    if masks is not None:
        # Shift labels by one so that 0 marks pixels that came from outside.
        shifted = (masks + 1).unsqueeze(1).float()
        sampled = F.grid_sample(shifted, grid, mode="nearest", align_corners=False)
        sampled = sampled.squeeze(1).long() - 1
        masks = torch.where(sampled < 0, torch.full_like(sampled, outside), sampled)
    return images, masks


def _uniform(count: int, limit: float, generator: torch.Generator | None) -> Tensor:
    return (torch.rand(count, generator=generator) * 2 - 1) * limit


def _random_affine(
    count: int, height: int, width: int, policy: AugmentPolicy, generator: torch.Generator | None
) -> Tensor:
    """One (2, 3) sampling matrix per sample, in the normalised coordinates of affine_grid."""
    angle = _uniform(count, math.radians(policy.rotation), generator)
    zoom = 1 + _uniform(count, policy.scale, generator)
    # Whole-pixel shifts keep a pure translation exact under bilinear sampling.
    shift_y = torch.round(_uniform(count, policy.shift * height, generator)) * 2 / height
    shift_x = torch.round(_uniform(count, policy.shift * width, generator)) * 2 / width
    mirror = torch.ones(count)
    if policy.flip:
        mirror = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    first_row = torch.stack([cos * mirror, -sin, shift_x], 1)
    second_row = torch.stack([sin * mirror, cos, shift_y], 1)
    return torch.stack([first_row, second_row], 1)


def _random_erase(images: Tensor, probability: float, generator: torch.Generator | None) -> Tensor:
    """Blank one rectangle of 2-20 % of the area in a ``probability`` share of the images."""
    count, _, height, width = images.shape
    apply = torch.rand(count, generator=generator) < probability
    area = (0.02 + torch.rand(count, generator=generator) * 0.18) * height * width
    aspect = torch.exp(_uniform(count, math.log(3), generator))
    box_h = (area * aspect).sqrt().clamp(1, height).floor()
    box_w = (area / aspect).sqrt().clamp(1, width).floor()
    top = (torch.rand(count, generator=generator) * (height - box_h + 1)).floor()
    left = (torch.rand(count, generator=generator) * (width - box_w + 1)).floor()
    rows = torch.arange(height).view(1, height, 1)
    cols = torch.arange(width).view(1, 1, width)
    inside = (
        (rows >= top.view(-1, 1, 1))
        & (rows < (top + box_h).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1))
        & (cols < (left + box_w).view(-1, 1, 1))
        & apply.view(-1, 1, 1)
    )
    return images.masked_fill(inside.unsqueeze(1), 0.0)
