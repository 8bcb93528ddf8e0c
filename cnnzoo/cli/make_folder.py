"""cnnzoo make-folder OUT: write a seeded folder of synthetic JPEG images, one sub-folder per class.

For trying ``--data folder:OUT``, streaming and the loader benchmark at any
scale without downloading a data set: each class has its own colour and
stripe angle, so a network can learn it (:mod:`cnnzoo.data.synthetic_folder`).
"""

from __future__ import annotations

import argparse

from cnnzoo.cli import add_quiet_flag
from cnnzoo.data.synthetic_folder import SPLITS, FolderSpec, write_image_folder


def _size(text: str) -> tuple[int, int]:
    """``H,W`` or one side ``S`` (square)."""
    try:
        sides = tuple(int(part) for part in text.split(","))
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2 or min(sides) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W such as 160,160, got {text!r}")
    return sides  # type: ignore[return-value]


def _splits(text: str) -> tuple[str, ...]:
    names = tuple(name for name in text.split(",") if name)
    unknown = [name for name in names if name not in SPLITS]
    if unknown:
        raise argparse.ArgumentTypeError(f"splits are among {', '.join(SPLITS)}, not {text!r}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="a new (or empty) folder to write")
    parser.add_argument("--images", type=int, default=2000, help="files in all")
    parser.add_argument("--classes", type=int, default=10, help="class sub-folders")
    parser.add_argument("--size", type=_size, default=(160, 160), metavar="H,W", help="image size")
    parser.add_argument(
        "--splits",
        type=_splits,
        default=(),
        metavar="train,val,...",
        help="write OUT/SPLIT/CLASS/ (ImageNet's layout) instead of OUT/CLASS/",
    )
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same bytes")
    parser.add_argument("--workers", type=int, default=1, help="processes writing files")
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    spec = FolderSpec(
        images=args.images, classes=args.classes, size=args.size, seed=args.seed,
        splits=args.splits,
    )  # fmt: skip
    paths = write_image_folder(args.out, spec, workers=args.workers)
    height, width = spec.size
    print(f"wrote {len(paths):,} {height}x{width} JPEGs in {spec.classes} classes to {args.out}")
    return 0
