"""Evaluation and prediction show a bar over their batches and images, unless told not to."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.evaluation.evaluate import EvalOptions, evaluate
from cnnzoo.inference.predict_files import predict_images
from cnnzoo.inference.predictor import Predictor


@pytest.fixture
def bars_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bars as on a terminal (under pytest, standard error is not one)."""
    monkeypatch.setattr("cnnzoo.progress.bars_enabled", lambda: True)


def _dataset() -> InMemoryImages:
    images = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)
    return InMemoryImages(images, torch.arange(10) % 2, Normalization((0.5,), (0.25,)))


def _classifier() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))


def test_evaluation_bar_shows_and_can_be_hidden(
    bars_on: None, capsys: pytest.CaptureFixture
) -> None:
    shown_bar = EvalOptions(batch_size=4)
    evaluate(_classifier(), _dataset(), task="classification", num_classes=2, options=shown_bar)
    shown = capsys.readouterr().err
    assert "evaluating" in shown and "/3 " in shown
    hidden_bar = EvalOptions(batch_size=4, show_progress=False)
    evaluate(_classifier(), _dataset(), task="classification", num_classes=2, options=hidden_bar)
    assert "evaluating" not in capsys.readouterr().err


def test_prediction_counts_its_images(
    bars_on: None, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    paths = []
    for index in range(2):
        paths.append(tmp_path / f"digit{index}.png")
        Image.new("L", (8, 8)).save(paths[-1])
    feed = Preprocessing(1, (8, 8), None, None)
    loaded = Predictor(_classifier().eval(), ["a", "b"], "classification", feed)
    assert len(predict_images(loaded, paths, topk=1)) == 2
    shown = capsys.readouterr().err
    assert "predicting" in shown and "/2 " in shown


def test_the_automatic_evaluation_batch_fits_the_memory_budget() -> None:
    """U-Net at 572x572 holds over 1 GB per image; LeNet-5's 32x32 digits barely 60 kB."""
    from cnnzoo.inference.batching import MAX_EVAL_BATCH, eval_batch_size
    from cnnzoo.models.registry import create_model

    with torch.device("meta"):  # shapes only: nothing is allocated or computed
        unet = create_model("unet", num_classes=2, in_channels=1)
    assert eval_batch_size(unet, (1, 572, 572), 2048, device="meta") <= 2
    lenet = create_model("lenet5", num_classes=10, in_channels=1)
    assert eval_batch_size(lenet, (1, 32, 32), 2048) == MAX_EVAL_BATCH
    assert eval_batch_size(lenet, (1, 32, 32), 1) < MAX_EVAL_BATCH


def test_an_unset_evaluation_batch_is_chosen_and_a_given_one_wins(
    bars_on: None, capsys: pytest.CaptureFixture
) -> None:
    evaluate(_classifier(), _dataset(), task="classification", num_classes=2)
    assert "/1 " in capsys.readouterr().err  # all 10 images in one batch
    given = EvalOptions(batch_size=2)
    evaluate(_classifier(), _dataset(), task="classification", num_classes=2, options=given)
    assert "/5 " in capsys.readouterr().err
