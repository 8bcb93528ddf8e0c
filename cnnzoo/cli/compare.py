"""cnnzoo compare MODEL... [--runs RUN_DIR...]: networks side by side, table and chart.

Compares networks by parameters, multiply-accumulates and measured latency
(batch 1, this machine), and by the test score of training runs given with
--runs. Writes comparison.csv, comparison.json and comparison.png (score, or
latency, against GMACs; bubble area = parameters) into --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnzoo.cli import add_quiet_flag, parse_shape
from cnnzoo.cli.paths import add_force_flag, writable_output
from cnnzoo.errors import CnnzooError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL", help="names or wildcards")
    parser.add_argument(
        "--input", type=parse_shape, default=None, metavar="C,H,W",
        help="input size of the named models (default: each one's paper size)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", nargs="+", default=[], metavar="RUN_DIR",
        help="run directories of `cnnzoo train`: adds their top-1 / mean IoU",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("comparison"), help="output directory")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per network")
    parser.add_argument(
        "--no-latency", action="store_true", help="skip timing (the chart then needs --runs)"
    )
    add_force_flag(parser)
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.analysis.comparison import compare_models, format_comparison, write_comparison
    from cnnzoo.models.registry import get_model_entry, list_models

    if not args.models and not args.runs:
        raise CnnzooError(
            "name at least one model (e.g. `cnnzoo compare resnet18 vgg11`) or --runs"
        )
    if args.repeats < 1:
        raise CnnzooError(f"--repeats must be at least 1, got {args.repeats}")
    # comparison.csv, comparison.json and comparison.png, as write_comparison names them.
    writable_output(args.out, force=args.force, directory=True, contents=["comparison.*"])
    names: list[str] = []
    for pattern in args.models:
        matches = list_models(pattern) if any(c in pattern for c in "*?[") else [pattern]
        if not matches:
            raise CnnzooError(f"no model matches {pattern!r}; run `cnnzoo list` to see them")
        for name in matches:
            get_model_entry(name)  # a clear error for an unknown name
            names.append(name)
    rows = compare_models(
        list(dict.fromkeys(names)),
        args.runs,
        input_shape=args.input,
        latency=not args.no_latency,
        repeats=args.repeats,
    )
    print(format_comparison(rows))
    written = write_comparison(rows, args.out)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
