"""The runtime choices of a run: which device, which random numbers, which precision, threads.

Every caller that trains or evaluates (the trainer, inference, the survey
experiments, the epoch benchmark) asks this module, so ``--device``,
``--seed``, ``--precision`` and ``--threads`` mean the same thing
everywhere.

The memory layout (NHWC or NCHW) is the one runtime choice kept in its own
module, :mod:`cnnzoo.device.memory_format`: it comes with a measured argument of
its own (which networks train faster NHWC, and the 1x1-map exception) that
tables, notes and the benchmark also cite, and it reads best beside the
probe that converts a network.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from cnnzoo.errors import CnnzooError

# Spreads the epochs of one seed apart, so that (seed, epoch) and (seed + 1, epoch - k)
# never share a generator; a prime larger than any epoch count.
EPOCH_STRIDE = 1_000_003


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when there is one; asking for a missing CUDA device is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnzooError("--device cuda was asked for but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (weight initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator behind one epoch's shuffling and augmentation, fixed by (seed, epoch).

    Drawing each epoch from its own generator, rather than from one stream,
    lets a resumed run shuffle its next epoch exactly as an uninterrupted one.
    """
    return torch.Generator().manual_seed(seed * EPOCH_STRIDE + epoch)


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """bf16 or fp16 autocast on ``device`` when asked for, a no-op for fp32.

    bf16 keeps fp32's exponent range, so unlike fp16 it needs no loss scaling;
    fp16 (with the training step's GradScaler) is for CUDA only.
    """
    check_precision(precision, device)
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
    return contextlib.nullcontext()


def check_precision(precision: str, device: torch.device | str) -> None:
    """Refuse fp16 off CUDA, where PyTorch has no fp16 loss scaling worth using."""
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise CnnzooError(
            f"--precision fp16 needs a CUDA device, and this run is on {torch.device(device)}; "
            "use --precision bf16 on CPU"
        )


def set_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op CPU threads; ``None`` keeps torch's default (one per core)."""
    if threads:
        torch.set_num_threads(threads)
