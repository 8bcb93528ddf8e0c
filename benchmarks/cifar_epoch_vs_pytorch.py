"""A CIFAR-10 ResNet-20 epoch in cnnzoo against the same recipe written in plain PyTorch.

Both train on the same 45,000 images held in memory and evaluate on the same 5,000
held-out ones after each epoch, with He et al.'s augmentation (4-pixel padding, a random
32x32 crop, a horizontal flip), SGD at batch 128 and the same network:

* cnnzoo: ``cnnzoo train resnet20 --data folder:PATH --augment basic``, the engine's own
  epoch (batch-level augmentation of the uint8 tensor, channels_last on CPU), read from
  the wall-clock between the ends of successive epochs (training, validation and the
  checkpoint written);
* plain PyTorch: torchvision's ``CIFAR10`` way, a dataset that hands each image to
  Pillow and ``transforms.RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``,
  ``ToTensor`` and ``Normalize`` in a ``DataLoader`` with ``--workers`` processes, and the
  textbook loop (NCHW, ``zero_grad``/``backward``/``step``, then an evaluation pass).

The two alternate, epoch for epoch (``--rounds`` of ``--epochs`` each), so that load
from other work falls on both; the first epoch of each block is left out (one-off set-up).
Prints one JSON line with the images/s of each and their ratio.

    python benchmarks/cifar_epoch_vs_pytorch.py --data folder:PATH --workers 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from cnnzoo.measure.load import LoadMeter
from cnnzoo.models import create_model
from cnnzoo.runs.config import TrainConfig
from cnnzoo.runs.directory import scratch_run
from cnnzoo.train.callbacks import Callback
from cnnzoo.train.trainer import Trainer

RECIPE = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True}


class EpochEnds(Callback):
    """Wall-clock at the start and at the end of every epoch (validation included)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_start(self, trainer: Trainer) -> None:
        self.times.append(time.perf_counter())

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.times.append(time.perf_counter())


class Cifar10Style(Dataset):
    """torchvision's CIFAR10 item: an HWC uint8 array made a Pillow image, then transforms."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, transform: Any) -> None:
        self.data = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = targets.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


def cnnzoo_epochs(data: str, epochs: int, seed: int) -> tuple[list[float], Trainer]:
    config = TrainConfig(
        model="resnet20", data=data, image_size=32, in_channels=3, batch_size=128,
        epochs=epochs, schedule="cosine", augment="basic", seed=seed, plots=False, **RECIPE,
    )  # fmt: skip
    clock = EpochEnds()
    with scratch_run(config, "epoch-vs-pytorch") as quiet:
        trainer = Trainer(quiet, callbacks=[clock])
        trainer.fit()
    return [b - a for a, b in zip(clock.times, clock.times[1:])], trainer


def pytorch_epochs(trainer: Trainer, epochs: int, workers: int) -> list[float]:
    train, val = trainer.data.train, trainer.data.val
    mean, std = train.normalization.mean, train.normalization.std
    normalize = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    options = {"num_workers": workers, "persistent_workers": workers > 0}
    train_loader = DataLoader(
        Cifar10Style(train.images, train.targets, transforms.Compose(augment + normalize)),
        batch_size=128, shuffle=True, **options,
    )  # fmt: skip
    val_loader = DataLoader(
        Cifar10Style(val.images, val.targets, transforms.Compose(normalize)),
        batch_size=256, **options,
    )  # fmt: skip
    model = create_model("resnet20", 10)
    optimizer = torch.optim.SGD(model.parameters(), **RECIPE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(train_loader))
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for images, targets in train_loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), targets).backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, targets in val_loader:
                correct += int((model(images).argmax(1) == targets).sum())
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder:PATH of CIFAR-10's train/ test/")
    parser.add_argument("--workers", type=int, default=2, help="plain PyTorch's loader processes")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per block (first dropped)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ours, theirs, images = [], [], 0
    with LoadMeter() as meter:
        for round_index in range(args.rounds):
            seconds, trainer = cnnzoo_epochs(args.data, args.epochs, seed=round_index)
            ours += seconds[1:]
            images = len(trainer.data.train)
            theirs += pytorch_epochs(trainer, args.epochs, args.workers)[1:]
    load = meter.load
    ours_rate, theirs_rate = images / statistics.median(ours), images / statistics.median(theirs)
    print(json.dumps({
        "images": images, "workers": args.workers, "threads": torch.get_num_threads(),
        "cnnzoo_epoch_seconds": ours, "pytorch_epoch_seconds": theirs,
        "cnnzoo_images_per_second": round(ours_rate, 1),
        "pytorch_images_per_second": round(theirs_rate, 1),
        "ratio": round(ours_rate / theirs_rate, 3), "load": load.to_dict(),
        "numpy": np.__version__, "torch": torch.__version__,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
