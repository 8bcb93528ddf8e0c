"""Segmentation networks take any input size: properties checked at random sizes with hypothesis.

A segmentation model pads its input to a side its encoder takes (a multiple of
its total stride, plus its border for "valid" U-Net) and crops the scores back
(:mod:`cnnzoo.models.segmentation.base`). Whatever the height, width, batch, channels
and classes, the scores must come back at the input's size, and no sample of a
batch may change another's scores. Narrow widths keep each example cheap.
"""

from __future__ import annotations

from functools import cache

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnzoo
from cnnzoo.models.segmentation.base import SegmentationModel

# Narrow versions of the networks: the paper's widths change no shape.
NETWORKS = {
    "segnet_basic": {"width": 4},
    "unet": {"width": 2},
    "unet_valid": {"width": 2, "padding": "valid"},
}

sides = st.integers(1, 48)


@cache
def _network(name: str, in_channels: int, num_classes: int) -> SegmentationModel:
    torch.manual_seed(0)
    options = dict(NETWORKS[name])
    model = cnnzoo.create_model(name.removesuffix("_valid"), num_classes, in_channels, **options)
    return model.eval()


@settings(max_examples=16, deadline=None)
@given(
    name=st.sampled_from(["segnet_basic", "unet"]),
    batch=st.integers(1, 2),
    in_channels=st.sampled_from([1, 3]),
    num_classes=st.integers(1, 4),
    height=sides,
    width=sides,
)
def test_scores_come_back_at_the_input_size(
    name: str, batch: int, in_channels: int, num_classes: int, height: int, width: int
) -> None:
    model = _network(name, in_channels, num_classes)
    with torch.no_grad():
        scores = model(torch.randn(batch, in_channels, height, width))
    assert scores.shape == (batch, num_classes, height, width)
    assert torch.isfinite(scores).all()


@settings(max_examples=5, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40))
def test_the_valid_unet_mirrors_enough_context_for_any_size(height: int, width: int) -> None:
    model = _network("unet_valid", 1, 2)
    with torch.no_grad():
        assert model(torch.randn(1, 1, height, width)).shape == (1, 2, height, width)


@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(["segnet_basic", "unet"]), height=sides, width=sides)
def test_samples_of_a_batch_do_not_affect_each_other(name: str, height: int, width: int) -> None:
    # SegNet's decoder unpools at each sample's own max-pooling indices (Badrinarayanan et
    # al. 2015, sec. 3); with batch norm in evaluation mode nothing else mixes samples.
    model = _network(name, 3, 3)
    images = torch.randn(2, 3, height, width)
    with torch.no_grad():
        together = model(images)
        alone = torch.cat([model(images[:1]), model(images[1:])])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(NETWORKS)), side=st.integers(1, 700))
def test_the_padded_side_is_the_smallest_the_network_takes(name: str, side: int) -> None:
    model = _network(name, 1, 2)
    padded = model.padded_size(side)
    needed = side + 2 * model.border
    assert padded >= needed
    assert (padded - model.min_segment_size) % model.size_divisor == 0
    assert padded == model.min_segment_size or padded - model.size_divisor < needed
