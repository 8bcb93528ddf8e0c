"""What ``predict`` and ``eval`` share: how many images a step takes, and what runs them.

``--runtime`` runs the same weights eagerly, compiled by ``torch.compile``
or exported to ONNX and run by onnxruntime (:mod:`cnnzoo.speed.runners`);
``auto`` measures once and takes the fastest. The choice, and what was
measured, is one line on standard error, so the results on standard output
stay a clean table or JSON.
"""

from __future__ import annotations

import argparse
import sys

from torch import Tensor, nn

from cnnzoo.inference.batching import Forward, ForwardMaker

# auto sets up and times every runtime (torch.compile alone takes seconds to minutes) only
# for jobs of this many batches or more, which that can pay back.
AUTO_MIN_BATCHES = 20


def add_inference_flags(parser: argparse.ArgumentParser, *, topk_help: str) -> None:
    """``--topk``, ``--batch-size``, ``--runtime`` and ``--device``."""
    from cnnzoo.speed.runners import RUNTIMES

    parser.add_argument("--topk", type=int, default=5, help=topk_help)
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="images per step (default: as many as the run's --eval-memory-mb allows)",
    )  # fmt: skip
    parser.add_argument(
        "--runtime", choices=RUNTIMES, default="auto",
        help="what runs the network: auto (the fastest, measured once), eager, compiled "
        "(torch.compile) or onnxruntime (the ONNX export)",
    )  # fmt: skip
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


def check_counts(args: argparse.Namespace) -> None:
    """``--topk`` and ``--batch-size`` are at least 1, or one message says which is not."""
    from cnnzoo.errors import CnnzooError

    for flag, value in (("--topk", args.topk), ("--batch-size", args.batch_size or 1)):
        if value < 1:
            raise CnnzooError(f"{flag} must be at least 1, got {value}")


def forward_maker(runtime: str) -> ForwardMaker:
    """What runs a job's batches under ``--runtime``, said in one line on standard error.

    ``auto`` measures the runtimes only where that can pay: for a job of at
    least :data:`AUTO_MIN_BATCHES` batches whose images share one size (an
    ONNX graph fixes its input's size). Otherwise it runs eagerly and says why.
    """

    def make(model: nn.Module, example: Tensor, images: int, fixed_size: bool) -> Forward:
        from cnnzoo.speed.runners import make_runner

        chosen, reason = runtime, ""
        if runtime == "auto" and not fixed_size:
            chosen, reason = "eager", "auto: eager, as the images differ in size; "
        elif runtime == "auto" and images < AUTO_MIN_BATCHES * len(example):
            chosen, reason = "eager", f"auto: eager for {images:,} images, too few to measure; "
        runner = make_runner(model, example, chosen)
        print(reason + runner.description, file=sys.stderr)
        return runner.forward

    return make
