"""Activation memory of hand-made networks, counted on the meta device."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from cnnzoo.experiments.segnet_unet_fcn import (
    inference_activation_bytes,
    saved_activation_bytes,
)

FLOAT32 = 4
SIDE = 4  # a 1 x 4 x 4 input: 16 pixels per channel


class KeepsItsFirstMap(nn.Module):
    """conv1 -> conv2, then both maps concatenated: the first stays alive, like a skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 2, 1), nn.Conv2d(2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        first = self.conv1(x)
        return torch.cat([first, self.conv2(first)], dim=1)


def _meta(build: Callable[[], nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return build()


def test_a_chain_frees_each_map_once_the_next_is_computed() -> None:
    chain = _meta(lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.Conv2d(2, 3, 1)))
    # Peak: the 2-channel map (the second conv's input) beside the 3-channel output.
    assert inference_activation_bytes(chain, (1, SIDE, SIDE)) == (2 + 3) * 16 * FLOAT32


def test_a_kept_map_adds_to_the_peak() -> None:
    skip = _meta(KeepsItsFirstMap)
    # The 2- and 3-channel maps and their 5-channel concatenation, all alive at once.
    assert inference_activation_bytes(skip, (1, SIDE, SIDE)) == (2 + 3 + 5) * 16 * FLOAT32


def test_in_place_activations_add_nothing() -> None:
    chain = _meta(lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(inplace=True)))
    assert inference_activation_bytes(chain, (1, SIDE, SIDE)) == 2 * 16 * FLOAT32


def test_training_keeps_what_backward_needs_without_the_weights() -> None:
    chain = _meta(lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 1)))
    # conv1 keeps the image, ReLU its output, which is also conv2's input (counted once).
    assert saved_activation_bytes(chain, (1, SIDE, SIDE)) == (1 + 2) * 16 * FLOAT32
