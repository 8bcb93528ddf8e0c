"""The one FLOP counter: forward counts as torch's, a grouped convolution's backward corrected."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo.measure.flops import ModuleFlops, count_flops, flop_counter, parameter_count


def _forward_and_backward(model: nn.Module, counter: FlopCounterMode) -> int:
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    with counter:
        model(x).sum().backward()
    return counter.get_total_flops()


def _forward(model: nn.Module) -> int:
    with flop_counter() as counter, torch.no_grad():
        model(torch.randn(2, 8, 16, 16))
    return counter.get_total_flops()


@pytest.mark.parametrize("groups", [1, 2, 8])
def test_a_convolution_s_backward_costs_twice_its_forward(groups: int) -> None:
    # Both gradients (input and weight) cost what the forward did, whatever the groups:
    # a depthwise convolution (groups == channels) included.
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False)
    forward = _forward(conv)
    assert forward == 2 * 2 * 16 * 16 * conv.weight.numel()
    assert _forward_and_backward(conv, flop_counter()) == 3 * forward


def test_an_ungrouped_backward_is_counted_as_torch_counts_it() -> None:
    conv = nn.Conv2d(8, 4, 3, padding=1)
    corrected = _forward_and_backward(conv, flop_counter())
    assert corrected == _forward_and_backward(conv, FlopCounterMode(display=False))


def test_no_input_gradient_when_the_input_needs_none() -> None:
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    with flop_counter() as counter:
        conv(torch.randn(2, 8, 16, 16)).sum().backward()
    assert counter.get_total_flops() == 2 * _forward(conv)  # forward + weight gradient


def test_module_counts_include_children_and_every_call() -> None:
    linear = nn.Linear(4, 4, bias=False)
    model = nn.Sequential(nn.Sequential(linear, nn.ReLU()), linear)
    with ModuleFlops(model) as flops, torch.no_grad():
        model(torch.randn(1, 4))
    report = flops.report()
    one_call = 2 * 4 * 4
    assert report.total == 2 * one_call and report.macs == one_call
    assert report.per_module == {"0": one_call, "0.0": 2 * one_call, "0.1": 0}


@pytest.mark.parametrize("training", [True, False])
def test_count_flops_counts_a_forward_in_evaluation_mode(training: bool) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Dropout(0.5)).train(training)
    seen: list[bool] = []
    model[1].register_forward_hook(lambda module, inputs, output: seen.append(module.training))
    report = count_flops(model, (3, 10, 10))
    assert report.total == 2 * 8 * 8 * 8 * model[0].weight[0].numel() == report.per_module["0"]
    assert seen == [False] and model.training == training
    assert parameter_count(model) == 8 * 3 * 9 + 8 + 2 * 8
