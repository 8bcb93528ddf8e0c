"""U-Net: the paper's sizes and parameter count, the overlap-tile forward, the border weight map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.losses import border_weight_map, border_weight_maps
from cnnzoo.models.segmentation.unet import check_valid_tile


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_of_the_paper() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("unet", num_classes=2, in_channels=1)
    assert _parameters(model) == 31_030_658


def test_valid_padding_maps_572_to_388() -> None:
    """Fig. 1: a 572x572 tile gives the 388x388 segmentation of its centre."""
    with torch.device("meta"):
        model = cnnzoo.create_model("unet", 2, 1, padding="valid")
        assert model.segment(torch.empty(1, 1, 572, 572)).shape == (1, 2, 388, 388)


def test_valid_tiles_must_pool_evenly() -> None:
    check_valid_tile(torch.empty(1, 1, 572, 188))
    with pytest.raises(CnnzooError, match="188 \\+ 16k.*use 572 or 588"):
        check_valid_tile(torch.empty(1, 1, 574, 572))


def test_valid_forward_mirrors_context_for_any_size() -> None:
    model = cnnzoo.create_model("unet", 2, 1, padding="valid", width=4).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 97, 131)).shape == (1, 2, 97, 131)
        assert model(torch.randn(1, 1, 5, 3)).shape == (1, 2, 5, 3)


def test_options_are_checked() -> None:
    with pytest.raises(CnnzooError, match="padding must be"):
        cnnzoo.create_model("unet", 2, 1, padding="full")
    with pytest.raises(CnnzooError, match="needs padding='same'"):
        cnnzoo.create_model("unet", 2, 3, backbone="resnet18", padding="valid")
    with pytest.raises(CnnzooError, match="width must be a positive integer"):
        cnnzoo.create_model("unet", 2, 1, width=0)


def test_batch_norm_and_backbone_decoders() -> None:
    plain = cnnzoo.create_model("unet", 2, 1, width=4)
    normed = cnnzoo.create_model("unet", 2, 1, width=4, batch_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in normed.decoder.modules())
    on_resnet = cnnzoo.create_model("unet", 3, 3, backbone="resnet34")
    # One up-level per backbone stride (32 -> 16 -> 8 -> 4 -> 2) and one more to the input.
    assert len(on_resnet.decoder.levels) == 5


def _brute_force_weight_map(mask: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """Eq. 2 with one full distance transform per object."""
    labels, count = ndimage.label(mask != 0)
    distances = np.sort(
        np.stack([ndimage.distance_transform_edt(labels != i) for i in range(1, count + 1)]), axis=0
    )
    total = mask.size
    classes, counts = np.unique(mask, return_counts=True)
    w_c = np.zeros(mask.shape)
    for value, n in zip(classes, counts):
        w_c[mask == value] = total / (len(classes) * n)
    border = w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))
    return w_c + np.where(mask == 0, border, 0.0)


def test_border_weight_map_matches_equation_2() -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((60, 70), np.int64)
    for _ in range(12):  # touching and separate rectangular "cells"
        y, x = rng.integers(0, 50), rng.integers(0, 60)
        mask[y : y + rng.integers(4, 12), x : x + rng.integers(4, 12)] = 1
    mask[(ndimage.binary_dilation(mask == 1) ^ (mask == 1))] = 0
    weights = border_weight_map(mask).numpy()
    assert weights.dtype == np.float32 and weights.shape == mask.shape
    np.testing.assert_allclose(weights, _brute_force_weight_map(mask, 10.0, 5.0), atol=1e-3)


def test_border_weight_map_stresses_the_gap_between_touching_cells() -> None:
    mask = np.zeros((20, 40), np.int64)
    mask[:, 5:18] = 1
    mask[:, 20:33] = 1  # a 2-pixel gap at columns 18-19
    weights = border_weight_map(mask, w0=10, sigma=5)
    # Column 18 is 1 pixel from the left cell and 2 from the right one.
    expected_gap = weights[0, 0].item() + 10 * math.exp(-((1 + 2) ** 2) / 50)
    assert weights[10, 18].item() == pytest.approx(expected_gap, rel=1e-2)
    assert weights[10, 18] > 5 * weights[10, 10]
    assert torch.equal(border_weight_maps(torch.from_numpy(np.stack([mask, mask])))[1], weights)


def test_border_weight_map_gives_void_pixels_no_weight() -> None:
    mask = np.zeros((10, 10), np.int64)
    mask[2:5, 2:5] = 1
    mask[8:, 8:] = 255
    weights = border_weight_map(mask, ignore_index=255)
    assert (weights[8:, 8:] == 0).all() and (weights[:8] > 0).all()
