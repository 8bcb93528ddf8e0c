"""The stratified hold-out that gives a classification set its validation split."""

from __future__ import annotations

import torch

from cnnzoo.data.classification_splits import stratified_split


def test_stratified_split_takes_each_class_in_proportion() -> None:
    targets = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    kept, held = stratified_split(targets, 10, seed=3)
    assert torch.bincount(targets[held]).tolist() == [6, 3, 1]
    assert sorted(torch.cat([kept, held]).tolist()) == list(range(100))
    assert torch.equal(stratified_split(targets, 10, seed=3)[1], held)
    assert not torch.equal(stratified_split(targets, 10, seed=4)[1], held)
