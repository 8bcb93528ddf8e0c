"""One training step, the same for every caller that trains.

The trainer, the survey experiments (through the trainer) and the
benchmark's training mode all call :func:`train_step`, so a step always
means: forward under autocast, the main loss plus ``aux_weight`` times each
auxiliary head's loss, a check that the loss is finite before it touches the
weights, backward, the callbacks that inspect gradients, gradient clipping,
and the optimiser and learning-rate schedule steps.

Auxiliary outputs (GoogLeNet's side classifiers, the FCN/DeepLab auxiliary
heads) arrive as ``(main, *auxiliary)`` in training mode and add their loss
with weight 0.3 by default (Szegedy et al. 2014, arXiv:1409.4842, sec. 5: "the
losses of the auxiliary classifiers were weighted by 0.3").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from cnnzoo.engine.callbacks import Callback
from cnnzoo.engine.config import TrainConfig
from cnnzoo.engine.losses import LossFunction
from cnnzoo.engine.runtime import autocast
from cnnzoo.errors import CnnzooError

ModelOutput = Tensor | tuple[Tensor, ...] | list[Tensor]


@dataclass
class StepRecipe:
    """What every step of one run shares: the loss, the optimiser and how to apply it."""

    loss_fn: LossFunction
    optimizer: Optimizer
    scheduler: LRScheduler | None = None  # stepped after every optimiser step; None: no schedule
    aux_weight: float = 0.3  # auxiliary heads' loss weight (Szegedy et al. 2014, sec. 5)
    precision: str = "fp32"  # fp32 | bf16 (autocast around the forward pass)
    grad_clip: float | None = None  # clip the global gradient norm to this value
    callbacks: Sequence[Callback] = ()  # see each step after its backward pass

    @classmethod
    def from_config(
        cls, config: TrainConfig, loss_fn: LossFunction, optimizer: Optimizer,
        scheduler: LRScheduler | None, callbacks: Sequence[Callback] = (),
    ) -> StepRecipe:  # fmt: skip
        """The recipe a :class:`TrainConfig` asks for, around a built loss and optimiser."""
        aux_weight, precision, clip = config.aux_weight, config.precision, config.grad_clip
        return cls(loss_fn, optimizer, scheduler, aux_weight, precision, clip, callbacks)


class NonFiniteLoss(CnnzooError):
    """The loss became NaN or infinite, so the step stopped before applying it."""

    def __init__(self, value: float | str, step: int, kept: str = "") -> None:
        self.value, self.step = value, step
        kept = f" and {kept}" if kept else ""
        super().__init__(
            f"the loss became {value} at step {step}, so training stopped before applying "
            f"it{kept}; lower --lr, or add --grad-clip or --warmup"
        )


def combined_loss(
    output: ModelOutput, targets: Tensor, loss_fn: LossFunction, aux_weight: float
) -> tuple[Tensor, Tensor]:
    """(main loss + ``aux_weight`` x each auxiliary loss, the main scores in float32)."""
    main, *auxiliary = output if isinstance(output, tuple | list) else (output,)
    main = main.float()
    loss = loss_fn(main, targets)
    for aux in auxiliary:
        loss = loss + aux_weight * loss_fn(match_size(aux.float(), main), targets)
    return loss, main


def train_step(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    recipe: StepRecipe,
    *,
    step: int = 0,
    loss_scale: float = 1.0,
    agree: Callable[[bool], bool] | None = None,
) -> tuple[Tensor, Tensor]:
    """One optimiser step on a batch; returns (the detached loss, the main scores).

    ``step`` counts the steps done before this one (callbacks see it).
    ``loss_scale`` multiplies the loss before backward: under
    DistributedDataParallel, which averages gradients over processes, it makes
    that average the global batch's mean gradient. ``agree`` turns this
    process's "the loss is not finite" into a verdict every process shares
    (the distributed trainer also learns of stop signals in the same
    exchange); without it, the verdict is this process's own.
    """
    with autocast(images.device, recipe.precision):
        output = model(images)
    loss, main = combined_loss(output, targets, recipe.loss_fn, recipe.aux_weight)
    finite = bool(torch.isfinite(loss))
    # Every process must agree before the backward pass, or DDP would wait forever.
    not_finite = agree(not finite) if agree is not None else not finite
    if not_finite:
        value = loss.item() if not finite else "non-finite in another process"
        raise NonFiniteLoss(value, step + 1)
    recipe.optimizer.zero_grad(set_to_none=True)
    (loss * loss_scale).backward()
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    for callback in recipe.callbacks:
        callback.on_after_backward(step, inner)
    if recipe.grad_clip is not None:
        nn.utils.clip_grad_norm_(inner.parameters(), recipe.grad_clip)
    recipe.optimizer.step()
    if recipe.scheduler is not None:
        recipe.scheduler.step()
    return loss.detach(), main


def match_size(aux: Tensor, main: Tensor) -> Tensor:
    """Auxiliary segmentation scores upsampled to the main output's size."""
    if aux.dim() == 4 and aux.shape[-2:] != main.shape[-2:]:
        return F.interpolate(aux, size=main.shape[-2:], mode="bilinear", align_corners=False)
    return aux
