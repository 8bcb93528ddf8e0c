"""``cnnzoo predict RUN_DIR_OR_CHECKPOINT IMAGE...``: classes with probabilities, or masks.

Classifiers print the top-k classes of each image with their softmax
probabilities; segmentation networks write a colour mask and an overlay per
image into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="classify (or segment) image files")
    parser.add_argument("checkpoint", help="a run directory (uses best.pt) or a .pt file")
    parser.add_argument("images", nargs="+", type=Path, help="image files")
    parser.add_argument("--topk", type=int, default=5, help="classes shown per image")
    parser.add_argument(
        "--out", type=Path, default=Path("predictions"), help="segmentation masks go here"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per image")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.engine.inference import load_model, predict_images
    from cnnzoo.engine.runtime import pick_device
    from cnnzoo.errors import CnnzooError

    if args.topk < 1:
        raise CnnzooError(f"--topk must be at least 1, got {args.topk}")
    loaded = load_model(args.checkpoint, pick_device(args.device))
    for result in predict_images(loaded, args.images, topk=args.topk, out_dir=args.out):
        if args.json:
            print(json.dumps(result))
        elif "predictions" in result:
            ranked = "  ".join(
                f"{p['class']} {p['probability']:.3f}" for p in result["predictions"]
            )
            print(f"{result['image']}: {ranked}")
        else:
            print(f"{result['image']}: {', '.join(result['files'])}")
    return 0
