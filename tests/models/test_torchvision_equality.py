"""Where torchvision has the same network, ours loads its state dict and computes the same
outputs: the strongest correctness test we have, done offline with random weights."""

from __future__ import annotations

import pytest
import torch
import torchvision

import cnnzoo
from cnnzoo.models.registry import get_model_entry
from cnnzoo.models.weights import torchvision_state_dict

SHARED = [n for n in cnnzoo.list_models() if get_model_entry(n).torchvision is not None]

# torchvision constructor options needed to build the architecture we mirror.
TORCHVISION_OPTIONS: dict[str, dict] = {"googlenet": {"aux_logits": True, "init_weights": True}}


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", SHARED)
def test_same_outputs_as_torchvision(name: str) -> None:
    entry = get_model_entry(name)
    reference = torchvision.models.get_model(
        entry.torchvision, weights=None, **TORCHVISION_OPTIONS.get(name, {})
    ).eval()
    ours = cnnzoo.create_model(name).eval()
    assert _parameters(ours) == _parameters(reference)
    ours.load_state_dict(torchvision_state_dict(name, reference.state_dict()))
    size = max(entry.min_size, 64)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    assert (expected - actual).abs().max().item() <= 1e-4
