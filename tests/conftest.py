"""Shared test settings: deterministic seeds, the path of the real ISBI data, a layout check."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

ISBI_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


# The suite runs as two pytest-xdist workers on a 2-core machine: one thread each
# avoids the two workers' thread pools fighting over the cores (about 10x slower).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def isbi_dir() -> Path:
    """The real ISBI 2012 slices; tests that need them skip where they are absent."""
    if not (ISBI_DIR / "images").is_dir():
        pytest.skip(f"ISBI 2012 data not found at {ISBI_DIR}")
    return ISBI_DIR


def _output_and_gradients(model: torch.nn.Module, images: torch.Tensor) -> tuple:
    model.zero_grad(set_to_none=True)
    output = model(images)
    logits = output[0] if isinstance(output, tuple | list) else output
    logits.square().mean().backward()
    return logits.detach(), [p.grad for p in model.parameters() if p.requires_grad]


@pytest.fixture
def assert_layouts_agree() -> Callable[[torch.nn.Module, torch.Tensor], None]:
    """Check that a network computes the same function NCHW and NHWC, and trains in both.

    The trainer runs networks NHWC on CPU (``cnnzoo.device.memory_format``); only the order of
    floating-point sums may differ, so outputs are compared relative to their largest value.
    Gradients are only checked to reach the same parameters and be finite: where a max-pool
    window holds equal values (zeros after ReLU), the layouts may route its gradient apart.
    """

    def check(model: torch.nn.Module, images: torch.Tensor) -> None:
        model.eval()
        nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
        want, want_grads = _output_and_gradients(model, images)
        if not torch.isfinite(want).all():
            pytest.skip("a fresh network this deep overflows with running statistics")
        got, grads = _output_and_gradients(
            nhwc, images.contiguous(memory_format=torch.channels_last)
        )
        assert float((want - got).abs().max()) <= 1e-4 * float(want.abs().max()) + 1e-6
        assert [g is None for g in grads] == [g is None for g in want_grads]
        assert all(torch.isfinite(g).all() for g in grads if g is not None)

    return check
