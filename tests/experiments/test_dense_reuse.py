"""The dense-reuse experiment's probe of dense connectivity."""

from __future__ import annotations

import torch

from cnnzoo.experiments.dense_reuse import dense_inputs
from cnnzoo.models.registry import create_model


def test_each_dense_layer_receives_every_earlier_map_of_its_block() -> None:
    # DenseNet-40: three blocks of (40 - 4) / 3 = 12 layers (Huang et al. section 4.2).
    model = create_model("densenet40_k12", num_classes=10, in_channels=1)
    assert dense_inputs(model, torch.zeros(1, 1, 8, 8)) == [list(range(1, 13))] * 3


def test_a_residual_network_has_no_dense_blocks() -> None:
    model = create_model("resnet20", num_classes=10, in_channels=1)
    assert dense_inputs(model, torch.zeros(1, 1, 8, 8)) == []
