"""How fast an image folder can feed training: decoding and augmentation timed alone.

``cnnzoo benchmark --loader --data folder:PATH`` times what a training step
waits for when the data streams from disk, and nothing else: decode each
JPEG, RandomResizedCrop to the training size, flip, convert to float and
normalise, in batches prepared by worker processes, up to a normalised float
batch in the main process. ``--vs-torchvision`` times the reference
pipeline on the same files with the same ``DataLoader`` settings,
interleaved round by round so that both see the same load on the machine:
``torchvision.datasets.ImageFolder`` (Pillow) with ``transforms.v2``'s
RandomResizedCrop, RandomHorizontalFlip, ToImage, ToDtype(float32,
scale=True) and Normalize, as torchvision's reference classification
training composes them.

It also times the plain libjpeg-turbo decode of the same files on one core,
the ceiling a core could reach with no augmentation at all.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler

from cnnzoo.data import load_data, plain_request
from cnnzoo.data.base import source_name
from cnnzoo.data.images import decode_image
from cnnzoo.data.streaming import PREFETCH_BATCHES, StreamedImages, default_workers
from cnnzoo.errors import CnnzooError
from cnnzoo.measure.load import LoadMeter, MachineLoad

# ImageNet's channel statistics, as torchvision's reference training normalises.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DECODE_SAMPLE = 200  # files decoded for the one-core decode ceiling


@dataclass
class LoaderResult:
    """Images/s of the streamed loader, and of torchvision's when it was timed beside it."""

    source: str
    image_size: int
    batch_size: int
    workers: int
    batches: int  # timed batches per round
    rounds: int  # timed passes per pipeline, interleaved, after one that starts the workers
    images_per_second: float  # median over rounds
    images_per_second_per_core: float  # over the workers (the main process when there are none)
    decode_images_per_second_one_core: float  # libjpeg-turbo alone, no crop or conversion
    torchvision_images_per_second: float | None = None
    speedup_vs_torchvision: float | None = None
    load: MachineLoad | None = None

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["load"] = self.load.to_dict() if self.load is not None else None
        return values


def benchmark_loader(
    source: str,
    *,
    image_size: int = 224,
    batch_size: int = 64,
    workers: int | None = None,
    batches: int = 20,
    rounds: int = 3,
    vs_torchvision: bool = False,
) -> LoaderResult:
    """Time ``batches`` batches per round from ``source``'s training split (and torchvision's)."""
    if source_name(source) != "folder":
        raise CnnzooError("--loader times image folders; give --data folder:PATH")
    workers = default_workers() if workers is None else workers
    request = plain_request(
        image_size=(image_size, image_size), data_mode="stream", workers=workers, augment="basic"
    )
    split = load_data(source, request).train
    contenders = {"ours": _ours(split, batch_size, batches)}
    if vs_torchvision:
        contenders["torchvision"] = _torchvision(source, image_size, batch_size, workers, batches)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    with LoadMeter() as meter:
        # Round 0 starts the persistent workers and is not counted.
        for round_index in range(rounds + 1):
            for name, timed_round in contenders.items():
                rate = timed_round(round_index) * batch_size
                if round_index > 0:
                    rates[name].append(rate)
        decode_rate = _decode_rate(split)
    ours = statistics.median(rates["ours"])
    theirs = statistics.median(rates["torchvision"]) if vs_torchvision else None
    return LoaderResult(
        source, image_size, batch_size, workers, batches, rounds, ours,
        ours / max(workers, 1), decode_rate, theirs,
        ours / theirs if theirs else None, meter.load,
    )  # fmt: skip


TimedRound = Callable[[int], float]  # round index -> batches per second over one whole pass


def _timed(batches: Iterator[Any]) -> float:
    """Batches per second over a whole pass, prefetching included.

    Every batch a pass asks for is taken, so no worker is still busy with the
    pass when the other pipeline's round starts.
    """
    started = time.perf_counter()
    count = sum(1 for _ in batches)
    return count / (time.perf_counter() - started)


def _ours(split: StreamedImages, batch_size: int, count: int) -> TimedRound:
    def timed_round(round_index: int) -> float:
        generator = torch.Generator().manual_seed(round_index)
        order = torch.randperm(len(split), generator=generator)
        needed = count * batch_size
        if needed > len(split):
            order = order.repeat(-(-needed // len(split)))
        batches = [order[i : i + batch_size].tolist() for i in range(0, needed, batch_size)]
        return _timed(split.load_batches(batches, generator=generator))

    return timed_round


def _torchvision(
    source: str, image_size: int, batch_size: int, workers: int, count: int
) -> TimedRound:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    root = Path(source.partition(":")[2]).expanduser()
    transform = v2.Compose([
        v2.RandomResizedCrop(image_size, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])  # fmt: skip
    dataset = ImageFolder(str(root / "train" if (root / "train").is_dir() else root), transform)
    # Shuffled, as training reads, and exactly ``count`` batches a pass.
    sampler = RandomSampler(dataset, replacement=False, num_samples=count * batch_size)
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        persistent_workers=workers > 0, prefetch_factor=PREFETCH_BATCHES if workers else None,
        pin_memory=torch.cuda.is_available(),
    )  # fmt: skip
    return lambda round_index: _timed(iter(loader))


def _decode_rate(split: StreamedImages) -> float:
    """Files per second libjpeg-turbo decodes on one core (the main process, one thread)."""
    paths = [Path(os.fsdecode(p)) for p in split.samples.paths[:DECODE_SAMPLE]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        for path in paths:
            decode_image(path)
        return len(paths) / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)


def format_loader(result: LoaderResult) -> str:
    """A few lines: images/s, per core, the decode ceiling, torchvision's and the ratio."""
    lines = [
        f"loader {result.source}: RandomResizedCrop {result.image_size}, batch "
        f"{result.batch_size}, {result.workers} workers",
        f"  images/s: {result.images_per_second:.0f} "
        f"({result.images_per_second_per_core:.0f} per worker core)",
        f"  libjpeg-turbo decode alone, one core: {result.decode_images_per_second_one_core:.0f}"
        " images/s",
    ]
    if result.torchvision_images_per_second is not None:
        lines.append(
            f"  torchvision ImageFolder: {result.torchvision_images_per_second:.0f} images/s; "
            f"ours/torchvision {result.speedup_vs_torchvision:.2f}x"
        )
    if result.load is not None:
        lines.append(f"  machine: {result.load.describe()}")
    return "\n".join(lines)
