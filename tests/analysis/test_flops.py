"""FLOPs: the per-module breakdown adds up, and totals match published figures."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis.layer_table import layer_table
from cnnzoo.measure.flops import count_flops
from cnnzoo.models.registry import get_model_entry


def _published_macs() -> list[tuple[str, int, float]]:
    """(model, input side, GMACs) from torchvision's weight tables for the same networks."""
    from torchvision.models import get_model_weights

    rows = []
    for name in cnnzoo.list_models(task="classification"):
        reference = get_model_entry(name).torchvision
        if reference is None:
            continue
        weights = next(iter(get_model_weights(reference)))
        rows.append((name, weights.transforms().crop_size[0], weights.meta["_ops"]))
    return rows


@pytest.mark.parametrize(("name", "side", "gmacs"), _published_macs())
def test_macs_match_the_published_figures(name: str, side: int, gmacs: float) -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    report = count_flops(model, (3, side, side))
    assert report.macs / 1e9 == pytest.approx(gmacs, rel=0.02)


def test_resnet50_is_4_1_gmacs() -> None:
    # He et al. 2015 quote 3.8 G multiply-adds for their stride-on-1x1 bottleneck;
    # the torchvision layout (stride on the 3x3) that cnnzoo follows costs 4.1 G.
    if "resnet50" not in cnnzoo.list_models():
        pytest.skip("resnet50 is not registered")
    with torch.device("meta"):
        model = cnnzoo.create_model("resnet50")
    report = count_flops(model, (3, 224, 224))
    assert report.macs / 1e9 == pytest.approx(4.1, rel=0.02)
    assert report.total == 2 * report.macs


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "densenet121", "mobilenet_v2"])
def test_breakdown_adds_up_to_the_flop_counter_total(name: str) -> None:
    if name not in cnnzoo.list_models():
        pytest.skip(f"{name} is not registered")
    model = cnnzoo.create_model(name, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    with FlopCounterMode(display=False) as reference, torch.no_grad():
        model(x)
    table = layer_table(model, (3, 64, 64))
    assert table.total_flops == reference.get_total_flops() > 0
    assert sum(row.flops for row in table.at_depth(1)) == table.total_flops
    # Every convolution and linear layer's own count is its textbook product.
    for row in table.rows:
        module = model.get_submodule(row.name)
        if isinstance(module, torch.nn.Conv2d):
            out_channels, height, width = row.output_shape
            macs = out_channels * height * width * module.weight[0].numel()
            assert row.flops == 2 * macs * row.calls, row.name
