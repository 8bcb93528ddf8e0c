"""``cnnzoo predict RUN_DIR_OR_CHECKPOINT IMAGE...``: classes with probabilities, or masks.

Classifiers print the top-k classes of each image with their softmax
probabilities; segmentation networks write a colour mask and an overlay per
image into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnzoo.cli import add_quiet_flag
from cnnzoo.cli.paths import add_force_flag, writable_output
from cnnzoo.progress import progress

# The pictures a segmentation network's prediction leaves per image (engine.inference).
MASK_FILES = ("mask", "overlay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a run directory (uses best.pt) or a .pt file")
    parser.add_argument("images", nargs="+", type=Path, help="image files")
    parser.add_argument("--topk", type=int, default=5, help="classes shown per image")
    parser.add_argument(
        "--out", type=Path, default=Path("predictions"), help="segmentation masks go here"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per image")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_force_flag(parser)
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.engine.inference import load_model, predict_images
    from cnnzoo.engine.runtime import pick_device
    from cnnzoo.errors import CnnzooError

    if args.topk < 1:
        raise CnnzooError(f"--topk must be at least 1, got {args.topk}")
    loaded = load_model(args.checkpoint, pick_device(args.device))
    if loaded.task == "segmentation":  # each image's STEM_mask.png and STEM_overlay.png
        pictures = [f"{image.stem}_{kind}.png" for image in args.images for kind in MASK_FILES]
        writable_output(args.out, force=args.force, directory=True, contents=pictures)
    for image in progress(args.images, "predicting", unit="image"):
        (result,) = predict_images(loaded, [image], topk=args.topk, out_dir=args.out)
        print(_describe(result, as_json=args.json))
    return 0


def _describe(result: dict, *, as_json: bool) -> str:
    """One line per image: JSON, the ranked classes, or the mask files written."""
    if as_json:
        return json.dumps(result)
    if "predictions" in result:
        ranked = "  ".join(f"{p['class']} {p['probability']:.3f}" for p in result["predictions"])
        return f"{result['image']}: {ranked}"
    return f"{result['image']}: {', '.join(result['files'])}"
