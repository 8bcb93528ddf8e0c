"""The one training step every caller uses: losses, the finite check, callbacks, clipping."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.train import Callback
from cnnzoo.train.step import NonFiniteLoss, StepRecipe, combined_loss, match_size, train_step


def _linear(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(4, 3)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(6, 4, generator=generator), torch.tensor([0, 1, 2, 0, 1, 2])


def _recipe(model: nn.Module, **changes: object) -> StepRecipe:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return StepRecipe(loss_fn=F.cross_entropy, optimizer=optimizer, **changes)


def test_a_step_is_forward_loss_backward_and_update() -> None:
    model, reference = _linear(), _linear()
    images, targets = _batch()
    loss, scores = train_step(model, images, targets, _recipe(model))
    F.cross_entropy(reference(images), targets).backward()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter -= 0.1 * parameter.grad
    assert torch.allclose(model.weight, reference.weight)
    assert scores.shape == (6, 3) and loss.requires_grad is False


def test_auxiliary_losses_are_weighted_and_upsampled() -> None:
    main = torch.zeros(2, 3, 8, 8)
    targets = torch.zeros(2, 8, 8, dtype=torch.long)
    coarse = torch.zeros(2, 3, 4, 4)
    assert match_size(coarse, main).shape == main.shape
    loss, _ = combined_loss((main, coarse), targets, F.cross_entropy, aux_weight=0.5)
    assert loss.item() == pytest.approx(1.5 * math.log(3))


def test_a_non_finite_loss_stops_before_touching_the_weights() -> None:
    model = _linear()
    before = model.weight.detach().clone()
    images, targets = _batch()
    images[0, 0] = math.inf
    with pytest.raises(NonFiniteLoss, match="at step 8.*--grad-clip"):
        train_step(model, images, targets, _recipe(model), step=7)
    assert torch.equal(model.weight, before) and model.weight.grad is None


def test_the_verdict_of_every_process_decides() -> None:
    model = _linear()
    verdicts: list[bool] = []

    def another_process_diverged(not_finite: bool) -> bool:
        verdicts.append(not_finite)
        return True

    with pytest.raises(NonFiniteLoss, match="non-finite in another process"):
        train_step(model, *_batch(), _recipe(model), agree=another_process_diverged)
    assert verdicts == [False]


class _GradientNorms(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def on_after_backward(self, step: int, model: nn.Module) -> None:
        self.seen.append((step, float(model.weight.grad.norm())))


def test_callbacks_see_the_gradient_before_clipping_and_the_schedule_steps() -> None:
    model = _linear()
    watcher = _GradientNorms()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    recipe = StepRecipe(F.cross_entropy, optimizer, scheduler, grad_clip=1e-3, callbacks=[watcher])
    train_step(model, *_batch(), recipe, step=4)
    clipped = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert watcher.seen[0][0] == 4 and watcher.seen[0][1] > 1e-2
    assert clipped.item() == pytest.approx(1e-3, rel=1e-3)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_the_loss_scale_scales_the_gradient() -> None:
    plain, scaled = _linear(), _linear()
    images, targets = _batch()
    train_step(plain, images, targets, _recipe(plain))
    train_step(scaled, images, targets, _recipe(scaled), loss_scale=2.0)
    assert torch.allclose(scaled.weight.grad, 2 * plain.weight.grad)


def test_bf16_runs_the_forward_pass_under_autocast() -> None:
    model = _linear()
    inside: list[torch.dtype] = []
    model.register_forward_hook(lambda module, inputs, output: inside.append(output.dtype))
    loss, scores = train_step(model, *_batch(), _recipe(model, precision="bf16"))
    assert inside == [torch.bfloat16]
    assert scores.dtype == torch.float32 and math.isfinite(loss.item())
