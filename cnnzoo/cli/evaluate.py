"""cnnzoo eval RUN_DIR_OR_CHECKPOINT: metrics of a trained network on a data split.

The last line printed is the metrics as JSON.
"""

from __future__ import annotations

import argparse
import json

from cnnzoo.cli import add_quiet_flag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a run directory (uses best.pt) or a .pt file")
    parser.add_argument("--data", default=None, help="data set (default: the training data)")
    parser.add_argument("--data-dir", default=None, help="where downloadable data sets live")
    parser.add_argument("--download", action="store_true", help="download a missing data set")
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="images per step (default: as many as the run's --eval-memory-mb allows)",
    )  # fmt: skip
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.engine.inference import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        args.checkpoint,
        data=args.data,
        split=args.split,
        data_dir=args.data_dir,
        download=args.download,
        batch_size=args.batch_size,
        device=args.device,
    )
    print(json.dumps(metrics))
    return 0
