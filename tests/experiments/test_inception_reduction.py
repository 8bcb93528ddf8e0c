"""The Inception module of the reduction experiment, built from a row of Table 1."""

from __future__ import annotations

import torch

from cnnzoo.experiments.inception_reduction import InceptionModule
from cnnzoo.models.classification.googlenet import INCEPTION_CONFIGS


def test_module_takes_a_table_1_row() -> None:
    name, in_channels, *widths = INCEPTION_CONFIGS[0]  # inception3a: 64, 96, 128, 16, 32, 32
    reduced = InceptionModule(in_channels, widths, reduce=True)
    naive = InceptionModule(in_channels, widths, reduce=False)
    assert reduced.out_channels == 64 + 128 + 32 + 32
    assert naive.out_channels == 64 + 128 + 32 + in_channels  # the pool keeps its input
    x = torch.randn(1, in_channels, 4, 4)
    assert reduced(x).shape == (1, reduced.out_channels, 4, 4)
    assert naive(x).shape == (1, naive.out_channels, 4, 4)
