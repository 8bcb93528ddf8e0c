"""``--runtime``: what runs a trained network's forward pass in ``predict`` and ``eval``.

The same weights run eagerly, compiled by ``torch.compile`` or exported to
ONNX and run by onnxruntime (:mod:`cnnzoo.speed.runners`); ``auto`` measures
once and takes the fastest. The choice, and what was measured, is one line
on standard error, so the results on standard output stay a clean table or
JSON.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from torch import Tensor, nn


def add_runtime_flag(parser: argparse.ArgumentParser) -> None:
    from cnnzoo.speed.runners import RUNTIMES

    parser.add_argument(
        "--runtime", choices=RUNTIMES, default="auto",
        help="what runs the network: auto (the fastest, measured once), eager, compiled "
        "(torch.compile) or onnxruntime (the ONNX export)",
    )  # fmt: skip


def forward_maker(runtime: str) -> Callable[[nn.Module, Tensor], Callable[[Tensor], Tensor]]:
    """Builds the forward of ``runtime`` for a model and an example batch, and says which."""

    def make(model: nn.Module, example: Tensor) -> Callable[[Tensor], Tensor]:
        from cnnzoo.speed.runners import make_runner

        runner = make_runner(model, example, runtime)
        print(runner.description, file=sys.stderr)
        return runner.forward

    return make
