"""Learning-rate schedules, in optimiser steps."""

from __future__ import annotations

import pytest
import torch

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.config import TrainConfig
from cnnzoo.train.optim import LearningRateFactor, build_optimizer, build_scheduler


def test_resnet_cifar_schedule_divides_by_ten_at_32k_and_48k_iterations() -> None:
    factor = LearningRateFactor("step", total_steps=64_000, milestones=[32_000, 48_000])
    assert factor(31_999) == 1.0
    assert factor(32_000) == pytest.approx(0.1)
    assert factor(48_000) == pytest.approx(0.01)


def test_warmup_is_linear_then_cosine_decays_to_the_floor() -> None:
    factor = LearningRateFactor("cosine", total_steps=110, warmup_steps=10, min_factor=0.1)
    assert [factor(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.55)
    assert factor(110) == pytest.approx(0.1)


def test_resnet110_warms_up_at_a_constant_tenth_then_follows_the_steps() -> None:
    # He et al. 2015, sec. 4.2: 0.01 for about 400 iterations, then 0.1, /10 at 32k and 48k.
    config = TrainConfig(
        lr=0.1, schedule="step", milestones=[32_000, 48_000], step_unit="iteration",
        warmup=400, warmup_shape="constant", warmup_factor=0.1,
    )  # fmt: skip
    optimizer = build_optimizer(torch.nn.Linear(2, 2), config)
    factor = build_scheduler(optimizer, config, steps_per_epoch=391, total_steps=64_000)
    (rule,) = factor.lr_lambdas
    assert [rule(s) for s in (0, 200, 399)] == pytest.approx([0.1, 0.1, 0.1])
    assert rule(400) == 1.0
    assert rule(32_000) == pytest.approx(0.1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_a_warmup_factor_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(CnnzooError, match="warmup_factor must be in"):
        TrainConfig(warmup=5, warmup_shape="constant", warmup_factor=0.0).validate()


def test_poly_schedule_follows_deeplab() -> None:
    factor = LearningRateFactor("poly", total_steps=100, poly_power=0.9)
    assert factor(50) == pytest.approx(0.5**0.9)
    assert factor(100) == 0.0


def test_epoch_milestones_become_steps_and_the_optimizer_sees_the_rate() -> None:
    model = torch.nn.Linear(2, 2)
    config = TrainConfig(lr=0.1, schedule="step", milestones=[2], warmup=1)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=5, total_steps=20)
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.02)  # warm-up over the first epoch (5 steps)
    assert rates[5:10] == pytest.approx([0.1] * 5)
    assert rates[10] == pytest.approx(0.01)  # milestone at epoch 2 = step 10


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_optimizer_choice(name: str, kind: type) -> None:
    optimizer = build_optimizer(torch.nn.Linear(2, 2), TrainConfig(optimizer=name))
    assert isinstance(optimizer, kind)
