"""Classification splits built from uint8 image stacks, with a stratified hold-out.

Every in-memory classification source hands its images to
:func:`in_memory_splits` as one uint8 (N, C, H, W) tensor converted to the
network's channels and size (:class:`~cnnzoo.data.in_memory.InMemoryImages`).
Where a set has no validation split, a seeded, stratified share of the training
images (``DataRequest.val_fraction``, ``--val-fraction``, 10 % by default) is held
out to choose the best checkpoint, so the test split is never looked at during
training.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cnnzoo.data.base import DataRequest, DataSplits
from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.transforms import (
    AugmentPolicy,
    augment_policy,
    channel_statistics,
    convert_channels,
    resize_images,
    training_policy,
)


def stratified_split(targets: Tensor, holdout: int, seed: int) -> tuple[Tensor, Tensor]:
    """(kept, held-out) indices with ``holdout`` samples drawn in proportion to each class."""
    generator = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(targets, return_counts=True)
    exact = counts.double() * holdout / targets.numel()
    share = exact.floor().long()
    # Largest remainders get the samples the rounding left over.
    leftover = holdout - int(share.sum())
    share[torch.argsort(exact - share, descending=True)[:leftover]] += 1
    kept, held = [], []
    for label, take in zip(classes, share):
        members = torch.nonzero(targets == label).flatten()
        members = members[torch.randperm(members.numel(), generator=generator)]
        take = min(int(take), members.numel() - 1)
        held.append(members[:take])
        kept.append(members[take:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values


def in_memory_splits(
    request: DataRequest,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor] | None,
    class_names: list[str],
    *,
    mirror_invariant: bool,
    val: tuple[Tensor, Tensor] | None = None,
) -> DataSplits:
    """Turn uint8 (N, C, H, W) image stacks and label vectors into ready splits.

    Converts to the requested channels, holds out a validation split when none
    is given, takes the normalisation from the training images and stores each
    split at the requested size.
    """
    # Unset channels are the data's own: grey stays grey, colour (and RGBA) colour.
    channels = request.in_channels or (1 if train[0].shape[1] == 1 else 3)
    images, targets = convert_channels(train[0], channels), train[1].long()
    if val is None and request.val_fraction > 0:
        holdout = max(len(class_names), round(request.val_fraction * targets.numel()))
        kept, held = stratified_split(targets, holdout, request.seed)
        val = (images[held], targets[held])
        images, targets = images[kept], targets[kept]
    # Statistics of the images as the network sees them: resizing smooths, lowering the spread.
    sample = images[:: max(1, images.shape[0] // 10_000)]
    mean, std = channel_statistics(resize_images(sample, request.image_size or sample.shape[-2:]))
    normalization = Normalization(tuple(mean), tuple(std))

    def prepare(
        split: tuple[Tensor, Tensor], policy: AugmentPolicy | None = None
    ) -> InMemoryImages:
        return InMemoryImages(
            convert_channels(split[0], channels),
            split[1].long(),
            normalization,
            size=request.image_size,
            augment=policy or augment_policy("none", mirror_invariant),
        )

    return DataSplits(
        task="classification",
        train=prepare((images, targets), training_policy(request, mirror_invariant)),
        val=prepare(val) if val is not None else None,
        test=prepare(test) if test is not None else None,
        class_names=list(class_names),
    )
