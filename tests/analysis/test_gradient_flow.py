"""Per-layer gradient norms recorded during training."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from cnnzoo.analysis.gradient_flow import GradNormRecorder, read_grad_norms
from cnnzoo.errors import CnnzooError
from cnnzoo.train import callbacks


def _deep_plain_net(depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(1, 4, 3, padding=1)]
    for _ in range(depth):
        layers += [nn.Sigmoid(), nn.Conv2d(4, 4, 3, padding=1)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


def _recorded(depth: int, every: int, steps: int) -> GradNormRecorder:
    """A recorder that watched ``steps`` backward passes of a ``depth``-layer sigmoid stack."""
    model = _deep_plain_net(depth)
    recorder = GradNormRecorder(model, every=every)
    for step in range(steps):
        model.zero_grad()
        model(torch.randn(2, 1, 8, 8)).sum().backward()
        recorder.after_backward(step)
    return recorder


def test_records_every_layer_on_the_chosen_steps(tmp_path: Path) -> None:
    recorder = _recorded(depth=3, every=2, steps=5)
    assert [step for step, _ in recorder.records] == [0, 2, 4]
    recorder.save(tmp_path)
    with open(tmp_path / "grad_norms.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 5  # 3 steps x (4 convolutions + 1 linear)
    assert [r["layer"] for r in rows[:5]] == ["0", "2", "4", "6", "8"]
    assert all(float(r["grad_norm"]) > 0 for r in rows)
    image = Image.open(tmp_path / "grad_norms.png")
    assert image.size[0] > 300 and image.size[1] > 200
    low, high = image.convert("L").getextrema()
    assert high - low > 50, "the plot is blank"


def test_sigmoid_stack_shows_vanishing_gradients() -> None:
    # Each sigmoid multiplies the gradient by at most 1/4 (its maximum slope), so
    # the first layer of a deep sigmoid stack receives a far smaller gradient.
    model = _deep_plain_net(8)
    recorder = GradNormRecorder(model, every=1)
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    recorder.after_backward(0)
    norms = recorder.records[0][1]
    assert norms[0] < norms[-2] / 100


def test_a_saved_recording_reads_back(tmp_path: Path) -> None:
    recorder = _recorded(depth=2, every=1, steps=2)
    recorder.save(tmp_path)
    layers, records = read_grad_norms(tmp_path)
    assert layers == [name for name, _ in recorder.layers]
    assert [step for step, _ in records] == [0, 1]
    for (_, read), (_, recorded) in zip(records, recorder.records):
        assert read == pytest.approx(recorded, rel=1e-5)


def test_reading_a_run_without_a_recording_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="--log-grad-norms"):
        read_grad_norms(tmp_path)


def test_the_recorder_is_the_engine_callback_s() -> None:
    assert GradNormRecorder is callbacks.GradNormRecorder
