"""The stage bookkeeping every classifier shares: add_stage and outputs_in_turn."""

from __future__ import annotations

import torch
from torch import nn

from cnnzoo.models.classification.base import Classifier, FeatureInfo, outputs_in_turn


class AddOne(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def test_outputs_in_turn_keeps_every_output() -> None:
    outputs = outputs_in_turn([AddOne(), nn.Identity(), AddOne()], torch.tensor([1.0]))
    assert [float(out) for out in outputs] == [2.0, 2.0, 3.0]


def test_add_stage_registers_the_module_and_its_feature_entry() -> None:
    network = Classifier()
    network.feature_info = []
    stage = nn.Conv2d(3, 8, 3, stride=2)
    network.add_stage("stage1", stage, 8, 2)
    assert network.stage1 is stage
    assert dict(network.named_children()) == {"stage1": stage}
    assert network.feature_info == [FeatureInfo("stage1", 8, 2)]
