"""Confusion-matrix identities that must hold for every prediction, checked with hypothesis.

Every reported metric (top-1, pixel accuracy, class accuracy, IoU, mean and
frequency-weighted IoU; Long et al. 2015, sec. 5) comes from one confusion
matrix, and distributed training sums the matrices of its processes; so the
matrix must count exactly the valid samples, and summing partial matrices must
give the whole one.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnzoo.evaluation.metrics import ConfusionMatrix, MetricTracker

IGNORE = 255
EXAMPLES = settings(max_examples=50, deadline=None)


@st.composite
def labeled(draw: st.DrawFn) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(classes, targets, predictions); targets may hold the void label, as masks do."""
    classes = draw(st.integers(1, 6))
    count = draw(st.integers(0, 120))
    targets = draw(
        st.lists(
            st.one_of(st.integers(0, classes - 1), st.just(IGNORE)), min_size=count, max_size=count
        )
    )
    predictions = draw(st.lists(st.integers(0, classes - 1), min_size=count, max_size=count))
    return (
        classes,
        torch.tensor(targets, dtype=torch.int64),
        torch.tensor(predictions, dtype=torch.int64),
    )


def _matrix(classes: int, targets: torch.Tensor, predictions: torch.Tensor) -> ConfusionMatrix:
    confusion = ConfusionMatrix(classes, ignore_index=IGNORE)
    confusion.update(predictions, targets)
    return confusion


def _in_unit_interval_or_nan(values: torch.Tensor) -> bool:
    present = values[~values.isnan()]
    return bool(((present >= 0) & (present <= 1)).all())


@EXAMPLES
@given(labeled())
def test_the_matrix_counts_exactly_the_valid_samples(case: tuple) -> None:
    classes, targets, predictions = case
    confusion = _matrix(classes, targets, predictions)
    assert confusion.total == int((targets != IGNORE).sum())
    for target, prediction in zip(targets.tolist(), predictions.tolist()):
        if target != IGNORE:
            assert confusion.matrix[target, prediction] >= 1


@EXAMPLES
@given(labeled())
def test_hits_are_bounded_by_their_row_and_column(case: tuple) -> None:
    matrix = _matrix(*case).matrix
    hits = matrix.diagonal()
    assert (hits <= matrix.sum(1)).all() and (hits <= matrix.sum(0)).all()
    assert (matrix >= 0).all()


@EXAMPLES
@given(labeled())
def test_every_metric_is_a_fraction(case: tuple) -> None:
    confusion = _matrix(*case)
    accuracy = confusion.accuracy()
    if confusion.total == 0:
        assert math.isnan(accuracy)
    else:
        assert 0.0 <= accuracy <= 1.0
    assert _in_unit_interval_or_nan(confusion.iou())
    assert _in_unit_interval_or_nan(confusion.class_accuracy())
    for value in (confusion.mean_iou(), confusion.mean_class_accuracy()):
        assert math.isnan(value) or 0.0 <= value <= 1.0
    assert 0.0 <= confusion.frequency_weighted_iou() <= 1.0


@EXAMPLES
@given(labeled())
def test_frequency_weighted_iou_never_exceeds_pixel_accuracy(case: tuple) -> None:
    # IoU_c = TP / (TP + FP + FN) <= TP / (TP + FN), the recall; weighting the recalls by
    # class frequency gives the pixel accuracy.
    confusion = _matrix(*case)
    if confusion.total:
        assert confusion.frequency_weighted_iou() <= confusion.accuracy() + 1e-12


@EXAMPLES
@given(labeled())
def test_a_perfect_prediction_scores_one(case: tuple) -> None:
    classes, targets, _ = case
    confusion = _matrix(classes, targets, targets.clamp(max=classes - 1))
    if confusion.total:
        assert confusion.accuracy() == 1.0
        assert confusion.mean_iou() == 1.0
        assert confusion.mean_class_accuracy() == 1.0
        # A sum of class frequencies: one up to rounding.
        assert confusion.frequency_weighted_iou() == pytest.approx(1.0)


@EXAMPLES
@given(labeled(), st.data())
def test_merged_halves_equal_the_whole(case: tuple, data: st.DataObject) -> None:
    classes, targets, predictions = case
    cut = data.draw(st.integers(0, len(targets)))
    first = _matrix(classes, targets[:cut], predictions[:cut])
    first.merge(_matrix(classes, targets[cut:], predictions[cut:]))
    assert torch.equal(first.matrix, _matrix(classes, targets, predictions).matrix)


@EXAMPLES
@given(labeled(), st.data())
def test_renaming_the_classes_permutes_the_ious(case: tuple, data: st.DataObject) -> None:
    classes, targets, predictions = case
    order = torch.tensor(data.draw(st.permutations(range(classes))))
    valid = targets != IGNORE
    renamed = torch.where(valid, order[targets.clamp(max=classes - 1)], targets)
    original = _matrix(classes, targets, predictions).iou()
    permuted = _matrix(classes, renamed, order[predictions]).iou()
    assert torch.equal(permuted[order].nan_to_num(-1), original.nan_to_num(-1))


@EXAMPLES
@given(
    st.integers(5, 12).flatmap(
        lambda classes: st.tuples(
            st.just(classes),
            st.lists(st.integers(0, classes - 1), min_size=1, max_size=40),
        )
    ),
    st.integers(0, 2**31 - 1),
)
def test_top5_counts_at_least_the_top1_hits(case: tuple, seed: int) -> None:
    classes, targets = case
    scores = torch.randn(len(targets), classes, generator=torch.Generator().manual_seed(seed))
    tracker = MetricTracker("classification", classes)
    tracker.update(scores, torch.tensor(targets), loss=1.0)
    top1_hits = int(tracker.confusion.matrix.diagonal().sum())
    assert top1_hits <= tracker.top5_correct <= len(targets)
    assert tracker.loss == 1.0
