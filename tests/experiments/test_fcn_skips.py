"""Boundary F1 on hand-made label maps: which pixels are boundaries, and how they match."""

from __future__ import annotations

import pytest
import torch

from cnnzoo.errors import CnnzooError
from cnnzoo.experiments.fcn_skips import boundary_f1, boundary_pixels


def _halves(split: int, side: int = 8) -> torch.Tensor:
    """One (1, side, side) map: class 0 left of column ``split``, class 1 from it on."""
    labels = torch.zeros(1, side, side, dtype=torch.int64)
    labels[..., split:] = 1
    return labels


def test_boundary_pixels_mark_both_sides_of_a_label_change() -> None:
    labels = torch.zeros(6, 6, dtype=torch.int64)
    labels[2:4, 2:4] = 1
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[2:4, 2:4] = True  # the square itself, every pixel touches the outside
    expected[1, 2:4] = expected[4, 2:4] = True  # above and below
    expected[2:4, 1] = expected[2:4, 4] = True  # left and right (not the diagonal corners)
    assert torch.equal(boundary_pixels(labels), expected)
    assert not boundary_pixels(torch.ones(5, 5, dtype=torch.int64)).any()


def test_identical_maps_score_one() -> None:
    labels = _halves(4)
    assert boundary_f1(labels, labels, tolerance=0).item() == 1.0


def test_a_one_pixel_shift_is_forgiven_by_a_one_pixel_tolerance_only() -> None:
    truth, shifted = _halves(4), _halves(5)
    # Boundaries are columns 3-4 (truth) and 4-5 (prediction): half of each matches exactly.
    assert boundary_f1(shifted, truth, tolerance=0).item() == pytest.approx(0.5)
    assert boundary_f1(shifted, truth, tolerance=1).item() == 1.0
    far = _halves(7)  # columns 6-7: two and three pixels from the true boundary
    assert boundary_f1(far, truth, tolerance=1).item() == 0.0
    assert boundary_f1(far, truth, tolerance=2).item() == pytest.approx(0.5)


def test_scores_are_per_image_and_handle_maps_without_boundaries() -> None:
    flat = torch.zeros(1, 8, 8, dtype=torch.int64)
    prediction = torch.cat([flat, flat, _halves(4)])
    truth = torch.cat([flat, _halves(4), flat])
    scores = boundary_f1(prediction, truth, tolerance=2)
    # Neither has a boundary: perfect. A boundary missed, or one invented: zero.
    assert scores.tolist() == [1.0, 0.0, 0.0]


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(CnnzooError, match="label maps"):
        boundary_f1(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))
