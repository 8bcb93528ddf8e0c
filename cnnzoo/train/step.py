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

The post-2017 recipe lives here too, so every caller that trains gets it:
MixUp and CutMix blend the batch and turn its labels into soft targets
(the caller's accuracy is still counted against the original labels, since
the step returns only the scores); ``accumulate`` splits the batch into
micro-batches whose gradients add up to the whole batch's (under DDP the
processes exchange gradients after the last one only); fp16 scales the loss
with a :class:`torch.amp.GradScaler` so small gradients do not underflow; and
an exponential moving average of the weights is updated after each
optimiser step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel

from cnnzoo.device.placement import autocast
from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.losses import LossFunction
from cnnzoo.runs.config import TrainConfig
from cnnzoo.train.callbacks import Callback

ModelOutput = Tensor | tuple[Tensor, ...] | list[Tensor]
BatchMix = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass
class StepRecipe:
    """What every step of one run shares: the loss, the optimiser and how to apply it."""

    loss_fn: LossFunction
    optimizer: Optimizer
    scheduler: LRScheduler | None = None  # stepped after every optimiser step; None: no schedule
    aux_weight: float = 0.3  # auxiliary heads' loss weight (Szegedy et al. 2014, sec. 5)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast around the forward pass)
    grad_clip: float | None = None  # clip the global gradient norm to this value
    callbacks: Sequence[Callback] = ()  # see each step after its backward pass
    accumulate: int = 1  # micro-batches per batch, their gradients summed before one step
    mix: BatchMix | None = None  # MixUp / CutMix: (images, labels) -> (images, soft targets)
    ema: AveragedModel | None = None  # the weights' moving average, updated after each step
    scaler: torch.amp.GradScaler | None = None  # fp16 loss scaling; made when fp16 asks for it

    def __post_init__(self) -> None:
        if self.precision == "fp16" and self.scaler is None:
            self.scaler = torch.amp.GradScaler("cuda")

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        loss_fn: LossFunction,
        optimizer: Optimizer,
        scheduler: LRScheduler | None,
        callbacks: Sequence[Callback] = (),
        *,
        num_classes: int | None = None,
        ema: AveragedModel | None = None,
    ) -> StepRecipe:
        """The recipe a :class:`TrainConfig` asks for, around a built loss and optimiser.

        ``num_classes`` is the class count of a classification run (MixUp and
        CutMix need it for their soft targets); None for segmentation.
        """
        return cls(
            loss_fn,
            optimizer,
            scheduler,
            config.aux_weight,
            config.precision,
            config.grad_clip,
            callbacks,
            config.accumulate,
            batch_mix(config.mixup, config.cutmix, num_classes),
            ema,
        )


def batch_mix(mixup: float, cutmix: float, num_classes: int | None) -> BatchMix | None:
    """MixUp, CutMix or, with both alphas set, one of the two per batch (torchvision's recipe).

    MixUp (Zhang et al. 2017, arXiv:1710.09412) blends each image with its
    neighbour in the batch by a weight drawn from Beta(alpha, alpha); CutMix
    (Yun et al. 2019, arXiv:1905.04899) pastes a rectangle of the neighbour
    instead. Either way the label becomes the two classes in the same
    proportion. Drawn from torch's global generator, as the dropout masks are.
    """
    if not (mixup or cutmix):
        return None
    if num_classes is None:
        raise CnnzooError("--mixup and --cutmix mix class labels: they apply to classification")
    from torchvision.transforms import v2

    mixes = [v2.MixUp(alpha=mixup, num_classes=num_classes)] if mixup else []
    mixes += [v2.CutMix(alpha=cutmix, num_classes=num_classes)] if cutmix else []
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


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
    if recipe.mix is not None:
        images, targets = recipe.mix(images, targets)
    recipe.optimizer.zero_grad(set_to_none=True)
    loss, main = _accumulate_gradients(model, images, targets, recipe, loss_scale, agree, step)
    inner = unwrapped(model)
    if recipe.scaler is not None:
        recipe.scaler.unscale_(recipe.optimizer)  # callbacks and clipping see true gradients
    for callback in recipe.callbacks:
        callback.on_after_backward(step, inner)
    if recipe.grad_clip is not None:
        nn.utils.clip_grad_norm_(inner.parameters(), recipe.grad_clip)
    if recipe.scaler is not None:
        recipe.scaler.step(recipe.optimizer)  # skipped when a gradient overflowed
        recipe.scaler.update()
    else:
        recipe.optimizer.step()
    if recipe.scheduler is not None:
        recipe.scheduler.step()
    if recipe.ema is not None:
        recipe.ema.update_parameters(inner)
    return loss, main


def _accumulate_gradients(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    recipe: StepRecipe,
    loss_scale: float,
    agree: Callable[[bool], bool] | None,
    step: int,
) -> tuple[Tensor, Tensor]:
    """Forward and backward of each micro-batch; gradients add up to the batch's mean.

    Each micro-batch's loss is weighted by its share of the batch, so the
    summed gradient equals one pass over the whole batch (exactly, without
    batch normalisation, whose statistics are per micro-batch). Under DDP
    only the last backward exchanges gradients (``no_sync`` on the others),
    and all processes agree on the losses being finite before it, or DDP
    would wait forever for a process that stopped.
    """
    total = targets.shape[0]
    splits = zip(images.tensor_split(recipe.accumulate), targets.tensor_split(recipe.accumulate))
    # A process's share of a small global batch may have fewer images than micro-batches.
    parts = [
        (part_images, part_targets) for part_images, part_targets in splits if len(part_targets)
    ]
    losses, scores = [], []
    for index, (part_images, part_targets) in enumerate(parts):
        last = index == len(parts) - 1
        no_sync = getattr(model, "no_sync", None)
        with contextlib.nullcontext() if last or no_sync is None else no_sync():
            with autocast(part_images.device, recipe.precision):
                output = model(part_images)
            loss, main = combined_loss(output, part_targets, recipe.loss_fn, recipe.aux_weight)
            losses.append(loss * (part_targets.shape[0] / total))
            if last:
                _check_finite(torch.stack(losses).sum().detach(), recipe, agree, step)
            scaled = losses[-1] * loss_scale
            (recipe.scaler.scale(scaled) if recipe.scaler is not None else scaled).backward()
        losses[-1] = losses[-1].detach()  # the graph of each micro-batch is freed by its backward
        scores.append(main.detach())
    return torch.stack(losses).sum(), torch.cat(scores)


def _check_finite(
    loss: Tensor, recipe: StepRecipe, agree: Callable[[bool], bool] | None, step: int
) -> None:
    """Raise :class:`NonFiniteLoss`, gradients cleared, unless the batch's loss is finite."""
    finite = bool(torch.isfinite(loss))
    not_finite = agree(not finite) if agree is not None else not finite
    if not_finite:
        recipe.optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLoss(
            loss.item() if not finite else "non-finite in another process", step + 1
        )


def unwrapped(model: nn.Module) -> nn.Module:
    """The network inside torch.compile's and DistributedDataParallel's wrappers."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, DistributedDataParallel) else model


def compiled(model: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile(model)`` for ``--compile``, else the model as it is.

    The first steps trace and compile the network (tens of seconds to
    minutes, and a C++ compiler on CPU); later steps run fused kernels.
    """
    return torch.compile(model) if enabled else model


def match_size(aux: Tensor, main: Tensor) -> Tensor:
    """Auxiliary segmentation scores upsampled to the main output's size."""
    if aux.dim() == 4 and aux.shape[-2:] != main.shape[-2:]:
        return F.interpolate(aux, size=main.shape[-2:], mode="bilinear", align_corners=False)
    return aux
