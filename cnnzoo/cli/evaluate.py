"""cnnzoo eval RUN_DIR_OR_CHECKPOINT: metrics of a trained network on a data split.

A per-class table is printed, and written with the confusion matrix and
each image's prediction into ``--out`` (default: ``eval-SPLIT/`` in the
run directory, so nothing training wrote is replaced). Evaluating again
replaces the report in that default folder; a folder named with ``--out``
that holds a report is replaced only with ``--force``. The last line
printed is the metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnzoo.cli import add_quiet_flag
from cnnzoo.cli.inference import add_inference_flags, check_counts, forward_maker
from cnnzoo.cli.paths import add_force_flag, writable_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a run directory (uses best.pt) or a .pt file")
    parser.add_argument("--data", default=None, help="data set (default: the training data)")
    parser.add_argument("--data-dir", default=None, help="where downloadable data sets live")
    parser.add_argument("--download", action="store_true", help="download a missing data set")
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument(
        "--out", type=Path, default=None,
        help="folder for report.json, confusion.png and predictions.csv "
        "(default: eval-SPLIT/ in the run directory, or STEM-eval-SPLIT/ beside a .pt file)",
    )  # fmt: skip
    add_inference_flags(parser, topk_help="classes per image in predictions.csv")
    add_force_flag(parser)
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.evaluation.reports import CONFUSION_FILE, REPORT_FILE, format_report
    from cnnzoo.evaluation.saved_network import EvalData, evaluate_checkpoint
    from cnnzoo.inference.predictions import PREDICTIONS_FILE

    check_counts(args)
    out = args.out or default_report_dir(Path(args.checkpoint), args.split)
    contents = [REPORT_FILE, CONFUSION_FILE, PREDICTIONS_FILE]
    # The default folder holds only what eval wrote there before: its own report, replaced.
    force = args.force or args.out is None
    writable_output(out, force=force, directory=True, contents=contents)
    evaluation = evaluate_checkpoint(
        args.checkpoint,
        EvalData(args.data, args.split, args.data_dir, args.download),
        batch_size=args.batch_size,
        device=args.device,
        make_forward=forward_maker(args.runtime),
        out_dir=out,
        topk=args.topk,
    )
    print(format_report(evaluation.report))
    print(json.dumps(evaluation.metrics))
    return 0


def default_report_dir(location: Path, split: str) -> Path:
    """``eval-SPLIT/`` inside a run directory; ``STEM-eval-SPLIT/`` beside a checkpoint file."""
    from cnnzoo.runs.directory import checkpoint_path

    checkpoint_path(location)  # a clear message where there is no checkpoint
    if location.is_dir():
        return location / f"eval-{split}"
    return location.parent / f"{location.stem}-eval-{split}"
