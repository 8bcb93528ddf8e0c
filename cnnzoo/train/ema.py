"""An exponential moving average of the weights, evaluated and saved beside them.

Averaging the iterates of SGD (Polyak & Juditsky 1992) smooths out the noise
of the last steps; the exponential form, w_ema <- decay * w_ema + (1 - decay) * w
after every optimiser step, is what the 2019-2021 ImageNet recipes use
(Tan & Le 2019, EfficientNet, arXiv:1905.11946: decay 0.9999; torchvision's
ResNet-50 recipe). The batch-norm running statistics are averaged too
(``use_buffers=True``), so the averaged network is evaluated with statistics
that belong to its own weights.

The trainer evaluates the average every epoch beside the raw weights and
keeps its best epoch as ``best-ema.pt``, a checkpoint of the same form as
``best.pt`` whose weights are the averaged ones.
"""

from __future__ import annotations

import dataclasses

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cnnzoo.runs.checkpoint import Checkpoint


def build_model_ema(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """A moving average of ``model``'s parameters and buffers, or None when ``decay`` is None.

    The average starts as a copy of the weights (its first update copies
    them) and lives on the same device in the same memory layout.
    """
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def ema_checkpoint(checkpoint: Checkpoint, ema: AveragedModel) -> Checkpoint:
    """``checkpoint`` with the averaged weights and no training state: ``best-ema.pt``."""
    return dataclasses.replace(checkpoint, weights=ema.module.state_dict(), training=None)
