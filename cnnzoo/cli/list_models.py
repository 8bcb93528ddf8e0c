"""cnnzoo list [PATTERN]: every registered network with its family, size and paper."""

from __future__ import annotations

import argparse

from cnnzoo.models.parameter_counts import parameter_count
from cnnzoo.models.registry import get_model_entry, list_models


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. 'resnet*'")
    parser.add_argument("--task", choices=("classification", "segmentation"), default=None)
    parser.add_argument(
        "--format", choices=("table", "markdown"), default="table", help="output format"
    )


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in list_models(args.pattern, task=args.task):
        entry = get_model_entry(name)
        rows.append((name, entry.family, entry.task, f"{parameter_count(name):,}", entry.paper))
    header = ("model", "family", "task", "params", "paper")
    if args.format == "markdown":
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return 0
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [
            str(c).ljust(w) if i != 3 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ]
        print("  ".join(cells) + "  " + row[-1])
    return 0
