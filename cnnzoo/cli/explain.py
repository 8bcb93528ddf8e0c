"""cnnzoo explain RUN_DIR_OR_MODEL IMAGE: a PNG of what a network does with one image.

* --method gradcam: where the evidence for a class lies (heat map and overlay).
* --method features: the feature maps of one layer, most active channels first.
* --method se: the channel weights a squeeze-and-excitation block gives this image.

A run directory (or checkpoint) explains the trained network, fed as in
training; a model name explains randomly initialised weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnzoo.cli import add_quiet_flag
from cnnzoo.cli.paths import add_force_flag, writable_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnzoo.analysis.explain import METHODS

    parser.add_argument("source", metavar="RUN_DIR_OR_MODEL", help="run directory, .pt or name")
    parser.add_argument("image", type=Path, help="an image file")
    parser.add_argument("--method", choices=METHODS, default="gradcam")
    parser.add_argument(
        "--layer", default=None,
        help="module name from `cnnzoo info` (default: the last stage; the last SE block)",
    )  # fmt: skip
    parser.add_argument(
        "--class", dest="class_index", type=int, default=None, metavar="K",
        help="class to explain with gradcam (default: the predicted class)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("explain"), help="output directory")
    add_force_flag(parser)
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.analysis.explain import explain

    # The picture is IMAGE_METHOD_LAYER.png; without --layer, the layer is known only later.
    picture = f"{args.image.stem}_{args.method}_{args.layer or '*'}.png"
    writable_output(args.out, force=args.force, directory=True, contents=[picture])
    path = explain(args.source, args.image, args.method, args.layer, args.class_index, args.out)
    print(f"wrote {path}")
    return 0
