"""--train-fraction: a seeded share of the training split, stratified by class."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.streaming import FolderSamples, SampleRecipe, StreamedImages
from cnnzoo.data.subsets import training_fraction

GRAY = Normalization((0.5,), (0.25,))
# 200 images of class 0, 30 of class 1, 3 of class 2: a tenth of class 2 rounds to none.
TARGETS = torch.tensor([0] * 200 + [1] * 30 + [2] * 3)


def in_memory(targets: torch.Tensor) -> InMemoryImages:
    # Each image's one pixel holds its index, so a subset says which samples it kept.
    images = torch.arange(len(targets), dtype=torch.uint8).view(-1, 1, 1, 1)
    return InMemoryImages(images, targets, GRAY)


def kept_indices(split: InMemoryImages) -> list[int]:
    return split.images.flatten().tolist()


def test_a_tenth_keeps_each_class_in_proportion_and_at_least_one_image() -> None:
    share = training_fraction(in_memory(TARGETS), 0.1, seed=0, stratified=True)
    counts = torch.bincount(share.targets, minlength=3).tolist()
    assert counts == [20, 3, 1]
    assert all(int(TARGETS[i]) == int(t) for i, t in zip(kept_indices(share), share.targets))


def test_the_same_fraction_and_seed_give_the_same_images_and_another_seed_others() -> None:
    def chosen(seed: int) -> list[int]:
        return kept_indices(training_fraction(in_memory(TARGETS), 0.1, seed, stratified=True))

    assert chosen(3) == chosen(3)
    assert chosen(3) != chosen(4)


def test_a_whole_split_is_the_split_itself() -> None:
    split = in_memory(TARGETS)
    assert training_fraction(split, 1.0, seed=0, stratified=True) is split


def test_streamed_files_are_chosen_as_the_same_images_held_in_memory() -> None:
    files = [Path(f"class{int(t)}/{i}.png") for i, t in enumerate(TARGETS)]
    samples = FolderSamples(files, TARGETS, SampleRecipe((8, 8), channels=1))
    streamed = training_fraction(StreamedImages(samples, GRAY, 0), 0.1, 5, stratified=True)
    held = training_fraction(in_memory(TARGETS), 0.1, 5, stratified=True)
    names = [int(Path(path.decode()).stem) for path in streamed.samples.paths]
    assert names == kept_indices(held)
    assert streamed.normalization == GRAY


def test_segmentation_takes_a_seeded_random_share_of_whole_images() -> None:
    masks = torch.zeros(40, 2, 2, dtype=torch.long)
    split = in_memory(masks)
    share = training_fraction(split, 0.25, seed=1, stratified=False)
    assert len(share) == 10
    assert kept_indices(share) == kept_indices(
        training_fraction(split, 0.25, seed=1, stratified=False)
    )
    assert len(training_fraction(split, 0.001, seed=1, stratified=False)) == 1
