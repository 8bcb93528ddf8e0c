"""The se-attention experiment's reading of learned channel gates."""

from __future__ import annotations

import torch

from cnnzoo.experiments.se_attention import class_specificity, gates_by_class
from cnnzoo.models.registry import create_model


def test_gates_are_the_per_class_means_of_each_blocks_sigmoid() -> None:
    model = create_model("se_resnet20", num_classes=10, in_channels=1).eval()
    images = torch.randn(6, 1, 8, 8)
    targets = torch.tensor([0, 0, 1, 1, 1, 2])
    gates = gates_by_class(model, images, targets)
    assert len(gates) == 9 and gates["stage3.2.attention"].shape == (3, 64)
    block = model.get_submodule("stage1.0.attention")
    expected = []
    handle = block.gate.register_forward_hook(lambda m, i, out: expected.append(out.flatten(1)))
    with torch.no_grad():
        model(images)
    handle.remove()
    torch.testing.assert_close(gates["stage1.0.attention"][1], expected[0][2:5].mean(dim=0))


def test_specificity_is_zero_when_every_class_gets_the_same_gates() -> None:
    assert class_specificity(torch.full((10, 16), 0.3)) == 0.0
    assert class_specificity(torch.tensor([[0.0, 1.0], [1.0, 0.0]])) > 0.5
