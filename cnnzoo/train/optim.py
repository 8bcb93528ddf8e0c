"""Optimisers and learning-rate schedules as the papers used them.

* SGD with momentum 0.9 and weight decay: AlexNet (Krizhevsky et al. 2012,
  sec. 5), VGG, ResNet (He et al. 2015, sec. 3.4 and 4.2).
* Adam (Kingma & Ba 2014, arXiv:1412.6980) and AdamW with decoupled weight
  decay (Loshchilov & Hutter 2017, arXiv:1711.05101).
* Schedules, evaluated every optimiser step so milestones may be given in
  iterations as He et al. did (lr / 10 at 32k and 48k of 64k iterations):
  ``step`` (multiply by gamma at each milestone), ``cosine`` (Loshchilov &
  Hutter 2016, SGDR, arXiv:1608.03983), ``poly`` ((1 - t/T)^0.9, DeepLab v2,
  Chen et al. 2016, arXiv:1606.00915) and ``none``; each after an optional
  linear warm-up (Goyal et al. 2017, arXiv:1706.02677; He et al. 2015 warmed
  ResNet-110 up at lr 0.01).
* ``--norm-weight-decay``: a separate decay (usually 0) for the scale and
  shift of normalisation layers and for biases, as torchvision's reference
  scripts (``--norm-weight-decay``, ``--bias-weight-decay``) and timm do.
  Decay shrinks a weight towards 0 to limit the function's complexity; a
  batch-norm scale or a bias sets no such complexity, so decaying it only
  fights the normalisation (Goyal et al. 2017, sec. 5.1 leave them decayed;
  the 2021 recipes do not).
* ``--head-lr-scale S``: when the network starts from trained weights, the
  fresh head (the tensors left at their initialisation) learns at S times
  the rest's rate: a new classifier starts far from any solution while the
  trained layers should move little (Caffe's fine-tuning example gives its
  new layer 10 times the rate of the pretrained ones).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.config import TrainConfig

# Layers whose weights are a per-channel scale and shift rather than a learnt filter.
NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def parameter_groups(model: nn.Module, norm_weight_decay: float | None) -> list[dict]:
    """The optimiser's parameter groups: one, or the others and then norms and biases.

    With ``norm_weight_decay`` set, the parameters of normalisation layers and
    every bias form a second group with that weight decay; ``None`` keeps one
    group, so a recipe without the option trains exactly as before.
    """
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if norm_weight_decay is None:
        return [{"params": [p for _, p in trainable]}]
    in_norm_layers = {
        id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters()
    }
    exempt = [p for name, p in trainable if id(p) in in_norm_layers or name.endswith("bias")]
    exempt_ids = {id(p) for p in exempt}
    decayed = [p for _, p in trainable if id(p) not in exempt_ids]
    return [{"params": decayed}, {"params": exempt, "weight_decay": norm_weight_decay}]


def head_parameters(model: nn.Module, head: Collection[str], flag: str) -> list[nn.Parameter]:
    """The parameters named in ``head``; a message naming ``flag`` when there are none."""
    found = [p for name, p in model.named_parameters() if name in head]
    if not found:
        raise CnnzooError(
            f"{flag}: every tensor came from the starting weights and the network names no "
            "head of its own, so there is no head to train apart; drop the option"
        )
    return found


def with_head_rate(groups: list[dict], head: list[nn.Parameter], lr: float) -> list[dict]:
    """Each group split into the rest and the head, the head's part at learning rate ``lr``.

    The schedule then scales each group's own rate, so the ratio holds at every step.
    """
    in_head = {id(p) for p in head}
    split = []
    for group in groups:
        rest = [p for p in group["params"] if id(p) not in in_head]
        fresh = [p for p in group["params"] if id(p) in in_head]
        split += [{**group, "params": rest}, {**group, "params": fresh, "lr": lr}]
    return [group for group in split if group["params"]]


def build_optimizer(
    model: nn.Module, config: TrainConfig, head: Collection[str] = ()
) -> torch.optim.Optimizer:
    """The optimiser the configuration names, over :func:`parameter_groups`.

    ``head``: the names of the tensors left fresh when the rest started from
    trained weights; with ``config.head_lr_scale`` they learn at that multiple of ``lr``.
    """
    parameters = parameter_groups(model, config.norm_weight_decay)
    if config.head_lr_scale != 1.0:
        fresh = head_parameters(model, head, "--head-lr-scale")
        parameters = with_head_rate(parameters, fresh, config.lr * config.head_lr_scale)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    betas = (config.momentum, 0.999)
    if config.optimizer == "adam":
        return torch.optim.Adam(
            parameters, lr=config.lr, betas=betas, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(
        parameters, lr=config.lr, betas=betas, weight_decay=config.weight_decay
    )


class LearningRateFactor:
    """The multiple of the peak learning rate at a given optimiser step.

    A plain object (not a closure) so the scheduler's state dict can hold it.
    """

    def __init__(
        self,
        schedule: str,
        total_steps: int,
        warmup_steps: int = 0,
        milestones: list[int] | None = None,
        gamma: float = 0.1,
        poly_power: float = 0.9,
        min_factor: float = 0.0,
        warmup_shape: str = "linear",
        warmup_factor: float = 0.1,
    ) -> None:
        self.schedule = schedule
        self.warmup_shape = warmup_shape
        self.warmup_factor = warmup_factor
        self.total_steps = max(total_steps, 1)
        self.warmup_steps = min(warmup_steps, self.total_steps)
        self.milestones = list(milestones or [])
        self.gamma = gamma
        self.poly_power = poly_power
        self.min_factor = min_factor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            if self.warmup_shape == "constant":
                return self.warmup_factor
            return (step + 1) / self.warmup_steps
        if self.schedule == "step":
            return self.gamma ** bisect.bisect_right(self.milestones, step)
        if self.schedule == "none":
            return 1.0
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / decay_steps, 1.0)
        if self.schedule == "cosine":
            shape = 0.5 * (1 + math.cos(math.pi * progress))
        else:  # poly
            shape = (1 - progress) ** self.poly_power
        return self.min_factor + (1 - self.min_factor) * shape


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per optimiser step; epochs are converted to steps."""
    per_unit = steps_per_epoch if config.step_unit == "epoch" else 1
    factor = LearningRateFactor(
        config.schedule,
        total_steps=total_steps,
        warmup_steps=config.warmup * per_unit,
        milestones=[m * per_unit for m in config.milestones],
        gamma=config.gamma,
        poly_power=config.poly_power,
        min_factor=config.min_lr / config.lr,
        warmup_shape=config.warmup_shape,
        warmup_factor=config.warmup_factor,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
