"""The vanishing-gradients experiment's summary of a gradient-norm profile."""

from __future__ import annotations

import pytest

from cnnzoo.experiments.vanishing_gradients import EDGE_LAYERS, input_to_output_ratio


def test_ratio_compares_the_first_and_last_convolutions_and_leaves_out_the_classifier() -> None:
    assert EDGE_LAYERS == 3
    # Three input-side convolutions at 4, three output-side ones at 1, classifier at 100.
    assert input_to_output_ratio([4.0, 4.0, 4.0, 2.0, 1.0, 1.0, 1.0, 100.0]) == pytest.approx(4.0)


def test_a_level_profile_has_ratio_one() -> None:
    assert input_to_output_ratio([0.5] * 20) == pytest.approx(1.0)
