"""Experiments' own networks train through the engine, so every recipe option applies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo.train.trainer as trainer_module
from cnnzoo.data import DataSplits
from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.experiments.training import train_network
from cnnzoo.train import TrainConfig


def _splits() -> DataSplits:
    labels = torch.arange(32) % 2
    images = (labels.view(-1, 1, 1, 1) * 200 + torch.zeros(32, 1, 8, 8)).to(torch.uint8)
    dataset = InMemoryImages(images, labels, Normalization((0.5,), (0.25,)))
    return DataSplits("classification", dataset, dataset, dataset, ["dark", "bright"])


def test_train_network_runs_the_trainer_and_reports_the_test_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: list[int] = []
    real_step = trainer_module.Trainer._train_step

    def counted(self: trainer_module.Trainer, *args: object, **kwargs: object) -> object:
        steps.append(self.step)
        assert self.config.label_smoothing == 0.2 and self.config.grad_clip == 0.5
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(trainer_module.Trainer, "_train_step", counted)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    config = TrainConfig(epochs=2, batch_size=8, lr=0.1, label_smoothing=0.2, grad_clip=0.5)
    metrics = train_network(model, _splits(), config)
    assert steps == list(range(8))
    assert set(metrics) == {"top1", "loss", "steps", "epochs"}  # top-5 needs five classes
    assert metrics["steps"] == 8 and metrics["epochs"] == 2 and metrics["top1"] == 1.0
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 2), "the given module is trained in place"
