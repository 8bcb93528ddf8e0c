"""Stochastic depth: randomly skip a residual branch while training.

Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic Depth",
ECCV 2016, arXiv:1603.09382.

What it solved: very deep residual networks overfit and train slowly. Dropping
a block's residual branch at random (keeping only the shortcut) trains an
ensemble of shallower networks; at test time every branch is kept. EfficientNet
drops each sample's branch independently, with a rate that grows linearly with
depth (Tan & Le 2019, section 5.2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StochasticDepth(nn.Module):
    """Zero the whole branch of each sample with probability ``drop_rate`` in training.

    Kept branches are scaled by ``1 / (1 - drop_rate)`` so the expected output
    is unchanged and evaluation needs no rescaling: in ``eval()`` this is the
    identity.
    """

    def __init__(self, drop_rate: float) -> None:
        super().__init__()
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.drop_rate = drop_rate

    def forward(self, branch: Tensor) -> Tensor:
        if not self.training or self.drop_rate == 0.0:
            return branch
        survival = 1.0 - self.drop_rate
        # One Bernoulli draw per sample ("row" mode): a sample either keeps the branch or not.
        keep = torch.empty((branch.shape[0],) + (1,) * (branch.dim() - 1), device=branch.device)
        keep = keep.bernoulli_(survival).to(branch.dtype)
        # Scale the (N, 1, 1, 1) mask, not the branch: one pass over the branch instead of two.
        return branch * keep.div_(survival)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}"
