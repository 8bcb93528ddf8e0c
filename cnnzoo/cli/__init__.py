"""The ``cnnzoo`` command line: each subcommand lives in its own module here.

A module registers its parser with ``add_parser(subparsers)`` and sets the
function to run with ``parser.set_defaults(run=...)``. Mistakes a user can make
surface as :class:`~cnnzoo.errors.CnnzooError` and are printed as one line with
exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cnnzoo import __version__
from cnnzoo.errors import CnnzooError

# Subcommand modules, in the order `cnnzoo --help` lists them.
COMMAND_MODULES = (
    "list_models",
    "train",
    "evaluate",
    "predict",
    "experiment",
    "benchmark",
    "export",
    "info",
    "compare",
    "explain",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnzoo",
        description="The landmark CNNs: train, evaluate, compare and look inside them.",
    )
    parser.add_argument("--version", action="version", version=f"cnnzoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"cnnzoo.cli.{module_name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CnnzooError as error:
        print(f"cnnzoo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnzoo: interrupted", file=sys.stderr)
        return 130


def parse_shape(text: str) -> tuple[int, int, int]:
    """Parse ``C,H,W`` (as in ``--input 3,224,224``) into a tuple of ints."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,224,224, got {text!r}")
    return shape  # type: ignore[return-value]
