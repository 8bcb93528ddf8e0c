"""evaluating(): evaluation mode for a measurement, the lender's mode afterwards."""

from __future__ import annotations

import pytest
from torch import nn

from cnnzoo.measure.modes import evaluating


def _network(training: bool) -> nn.Module:
    return nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)


@pytest.mark.parametrize("training", [True, False])
def test_the_model_evaluates_inside_and_gets_its_mode_back(training: bool) -> None:
    model = _network(training)
    with evaluating(model) as inside:
        assert inside is model
        assert not any(module.training for module in model.modules())
    assert all(module.training == training for module in model.modules())


def test_the_mode_comes_back_when_the_measurement_fails() -> None:
    model = _network(True)
    with pytest.raises(RuntimeError), evaluating(model):
        raise RuntimeError("the forward pass failed")
    assert model.training and model[1].training
