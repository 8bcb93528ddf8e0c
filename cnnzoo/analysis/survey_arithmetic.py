"""The survey's kernel arithmetic, computed on real layers rather than asserted.

* Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition", 2014, arXiv:1409.1556, section 2.3: two stacked 3x3
  convolutions see 5x5 and three see 7x7, yet with C channels in and out they
  hold 2 * 9 C^2 = 18 C^2 and 3 * 9 C^2 = 27 C^2 weights against 25 C^2 and
  49 C^2 for one 5x5 or 7x7 -- and put a non-linearity between each pair.
* Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", 2015,
  arXiv:1511.07122 (and DeepLab's atrous convolution): a 3x3 kernel with
  dilation rate 2 spreads its 9 taps over a 5x5 window, so the field grows
  while the cost stays that of a 3x3.

Each figure below comes from building the layers with ``torch.nn.Conv2d``
(on the meta device: nothing is allocated), counting their parameters and
measuring the receptive field with
:func:`~cnnzoo.analysis.receptive_field.receptive_fields`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cnnzoo.analysis.receptive_field import receptive_fields


@dataclass(frozen=True)
class KernelCost:
    """What a stack of convolutions sees and what it costs."""

    description: str  # e.g. "3 x 3x3"
    receptive_field: int  # side of the square window one output unit sees
    weights: int  # weights of the stack (no biases), C channels in and out
    channels: int

    @property
    def weights_per_channel_squared(self) -> float:
        """Weights in units of C^2: 18 for two 3x3 layers, 25 for one 5x5."""
        return self.weights / self.channels**2


def conv_stack_cost(kernels: Sequence[int], channels: int, dilation: int = 1) -> KernelCost:
    """Receptive field and weights of stacked ``kernels`` x ``kernels`` convolutions.

    Each layer maps ``channels`` to ``channels`` with stride 1 and the given
    dilation; biases are left out, as in the survey's count.
    """
    with torch.device("meta"):
        stack = nn.Sequential(
            *(
                nn.Conv2d(channels, channels, k, padding=dilation * (k - 1) // 2,
                          dilation=dilation, bias=False)
                for k in kernels
            )
        )  # fmt: skip
    side = 4 * sum(dilation * (k - 1) + 1 for k in kernels)
    fields = receptive_fields(stack, (channels, side, side))
    side_of_field = int(fields[str(len(kernels) - 1)].size[0])
    if len(set(kernels)) == 1:
        label = f"{len(kernels)} x {kernels[0]}x{kernels[0]}"
    else:
        label = " + ".join(f"{k}x{k}" for k in kernels)
    if dilation > 1:
        label += f" rate {dilation}"
    return KernelCost(label, side_of_field, sum(p.numel() for p in stack.parameters()), channels)


def survey_table(channels: int = 64) -> list[tuple[KernelCost, KernelCost]]:
    """Stacks of small kernels beside the single large kernel with the same field.

    Rows: two 3x3 vs one 5x5, three 3x3 vs one 7x7, one rate-2 dilated 3x3 vs one 5x5.
    """
    return [
        (conv_stack_cost([3, 3], channels), conv_stack_cost([5], channels)),
        (conv_stack_cost([3, 3, 3], channels), conv_stack_cost([7], channels)),
        (conv_stack_cost([3], channels, dilation=2), conv_stack_cost([5], channels)),
    ]
