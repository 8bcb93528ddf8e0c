"""The ``cnnzoo`` command line: each subcommand lives in its own module here.

A command's module adds its flags with ``add_arguments(parser)`` and does the
work in ``run(args)``; its docstring is the description ``cnnzoo COMMAND
--help`` shows, so the two are written once. Mistakes a user can make
surface as :class:`~cnnzoo.errors.CnnzooError` and are printed as one line with
exit status 2, never as a traceback. Every parser is a :class:`Parser`, which
refuses abbreviated flags, so ``--epoch 3`` is an error rather than ``--epochs 3``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

from cnnzoo import __version__
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import set_quiet

# Each command's module and the line `cnnzoo --help` shows for it, in the order listed there.
COMMANDS = {
    "list": ("list_models", "list the models with family, parameters and paper"),
    "train": ("train", "train a network and write a run directory"),
    "eval": ("evaluate", "evaluate a trained network on a data split"),
    "predict": ("predict", "classify (or segment) image files"),
    "experiment": ("experiment", "run the survey's claims as experiments"),
    "benchmark": (
        "benchmark",
        "time networks (images/s, latency, FLOPs, MFU), optionally against torchvision",
    ),
    "make-folder": ("make_folder", "write a seeded folder of synthetic JPEG class folders"),
    "export": (
        "export",
        "export a run or a model to ONNX or TorchScript and check its outputs, "
        "or share a run as safetensors with a model card",
    ),
    "info": ("info", "layer table: shapes, parameters, FLOPs, stride and receptive field"),
    "compare": (
        "compare",
        "parameters, FLOPs, latency and accuracy of networks side by side, with a chart",
    ),
    "explain": (
        "explain",
        "Grad-CAM, feature maps or SE channel weights of a network on one image",
    ),
    "app": ("app", "look inside the networks and runs in a web page on this machine"),
}


# Packages some commands need and `pip install cnnzoo` leaves out, by import name, with the
# extra of pyproject.toml that installs each (tests/test_packaging.py holds the two together).
OPTIONAL_PACKAGES = {
    "sklearn": "demo",
    "mlxtend": "demo",
    "onnx": "export",
    "onnxruntime": "export",
    "onnxscript": "export",
    "tensorboard": "tensorboard",
    "starlette": "app",
    "uvicorn": "app",
}

# The shell's status for a process ended by SIGPIPE (128 + 13), what `head` expects.
BROKEN_PIPE_STATUS = 141


class Parser(argparse.ArgumentParser):
    """An argument parser that takes flags only as written in full.

    argparse would otherwise take any unambiguous prefix, so a mistyped
    ``--epoch 3`` would silently set ``--epochs``. Subcommand parsers are made
    by ``add_subparsers`` with the class of their parent, so this one class
    covers every parser of the command line.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})


def add_quiet_flag(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars (they are drawn only on a terminal anyway)."""
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser(
    only: str | None = None, *, summaries_only: bool = False
) -> argparse.ArgumentParser:
    """The command line; given ``only``, only that subcommand's module is imported and
    its flags built (the others keep their one-line summary), so a command starts without
    loading what every other command needs: `cnnzoo app` answers its first page sooner.
    With ``summaries_only`` no command's module is imported: the table above is all
    `cnnzoo --help` and `cnnzoo --version` need, and they answer without importing torch."""
    parser = Parser(
        prog="cnnzoo",
        description="The landmark CNNs: train, evaluate, compare and look inside them.",
    )
    parser.add_argument("--version", action="version", version=f"cnnzoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        if summaries_only or (only is not None and name != only):
            subparsers.add_parser(name, help=summary)
            continue
        module = importlib.import_module(f"cnnzoo.cli.{module_name}")
        command = subparsers.add_parser(
            name,
            help=summary,
            description=inspect.cleandoc(module.__doc__ or "").replace("``", ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the docstring's lines
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The first word that is no flag names the command (the top level takes no values).
    command = next((word for word in argv if not word.startswith("-")), None)
    try:
        # No command named (--help, --version) or an unknown one: argparse answers from
        # the table of one-line summaries, with no command's module imported.
        parser = build_parser(command, summaries_only=command not in COMMANDS)
        args = parser.parse_args(argv)  # --help, too, may meet a closed pipe
        set_quiet(bool(getattr(args, "quiet", False)))
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, where it can still be handled
        return status
    except BrokenPipeError:
        # The reader (`cnnzoo list | head -1`) has gone: as the Python documentation
        # advises, point stdout at devnull so the flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except CnnzooError as error:
        print(f"cnnzoo: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        extra = OPTIONAL_PACKAGES.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"cnnzoo: error: this needs {error.name}, which comes with the {extra!r} extra: "
            f"pip install 'cnnzoo[{extra}]'",
            file=sys.stderr,
        )
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
