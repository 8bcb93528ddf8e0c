"""The survey's kernel arithmetic (Simonyan & Zisserman 2014 section 2.3; Yu & Koltun 2015)."""

from __future__ import annotations

import pytest

from cnnzoo.analysis.survey_arithmetic import conv_stack_cost, survey_table

C = 32


@pytest.mark.parametrize(
    ("kernels", "dilation", "field", "weights_in_c2"),
    [
        ([3, 3], 1, 5, 18),  # two 3x3 see 5x5 ...
        ([5], 1, 5, 25),  # ... which one 5x5 does with 25 C^2 weights
        ([3, 3, 3], 1, 7, 27),  # three 3x3 see 7x7 ...
        ([7], 1, 7, 49),  # ... for which one 7x7 needs 49 C^2
        ([3], 2, 5, 9),  # a rate-2 dilated 3x3 sees 5x5 at the cost of a 3x3
        ([3, 3], 2, 9, 18),
    ],
)
def test_receptive_field_and_weights(
    kernels: list[int], dilation: int, field: int, weights_in_c2: int
) -> None:
    cost = conv_stack_cost(kernels, C, dilation=dilation)
    assert cost.receptive_field == field
    assert cost.weights == weights_in_c2 * C * C
    assert cost.weights_per_channel_squared == weights_in_c2


def test_survey_table_pairs_equal_fields_with_fewer_weights() -> None:
    for small, large in survey_table(channels=8):
        assert small.receptive_field == large.receptive_field
        assert small.weights < large.weights
    labels = [(s.description, l.description) for s, l in survey_table(channels=8)]
    assert labels[0] == ("2 x 3x3", "1 x 5x5")
    assert labels[2] == ("1 x 3x3 rate 2", "1 x 5x5")
