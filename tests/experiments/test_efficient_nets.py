"""The efficient-nets experiment's cost arithmetic and timing."""

from __future__ import annotations

import pytest
from torch import nn

from cnnzoo.experiments.efficient_nets import latency_ms, separable_cost_ratios


def test_separable_layers_cost_one_over_n_plus_one_ninth_of_a_standard_convolution() -> None:
    layers = separable_cost_ratios()
    assert len(layers) == 13
    first = layers[0]  # 32 -> 64 channels on the 112x112 map after the stride-2 stem
    assert (first["in"], first["out"], first["map"]) == (32, 64, 112)
    assert first["standard_macs"] == 9 * 32 * 64 * 112 * 112
    assert first["separable_macs"] == 9 * 32 * 112 * 112 + 32 * 64 * 112 * 112
    for layer in layers:
        assert layer["counted_ratio"] == pytest.approx(layer["predicted_ratio"], rel=1e-12)


def test_latency_is_a_positive_time_and_leaves_the_model_in_eval_mode() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    assert latency_ms(model, (1, 8, 8), repeats=3) > 0
    assert not model.training
