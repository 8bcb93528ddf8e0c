"""A seeded share of a training split: how transfer is measured with few labels.

``--train-fraction F`` trains on a fraction of the training images while the
validation and test splits stay whole, so runs with and without a starting
checkpoint are scored on the same images. For classification the share is
stratified: each class keeps its proportion, and at least one image, as the
semi-supervised and transfer benchmarks draw their labelled subsets (e.g. the
1 % and 10 % ImageNet subsets of Chen et al. 2020, SimCLR, arXiv:2002.05709).
Segmentation masks hold several classes each, so there the share is a seeded
random draw of whole images. The same fraction and seed always give the same
images, whether the split is held in memory or streamed from files.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cnnzoo.data.classification_splits import stratified_split
from cnnzoo.data.protocol import ClassificationSplit, Split


def training_fraction(split: Split, fraction: float, seed: int, *, stratified: bool) -> Split:
    """The seeded share ``fraction`` (0 < F <= 1) of ``split``; the split itself at 1.

    ``stratified``: by class (classification); else a random draw of images.
    Either way at least one image is kept.
    """
    if fraction >= 1.0:
        return split
    keep = max(1, round(fraction * len(split)))
    if stratified:
        indices, _ = stratified_split(class_targets(split), len(split) - keep, seed)
    else:
        generator = torch.Generator().manual_seed(seed)
        indices = torch.randperm(len(split), generator=generator)[:keep].sort().values
    return split.subset(indices)


def class_targets(split: Split) -> Tensor:
    """The class index of every sample: the split's ``targets``, or read item by item."""
    if isinstance(split, ClassificationSplit):
        return split.targets
    return torch.tensor([int(split[index][1]) for index in range(len(split))])
