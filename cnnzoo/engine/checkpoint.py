"""Checkpoints: everything needed to use a network or to resume its training exactly.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and
dicts -- no pickled objects -- so it loads with ``torch.load(weights_only=True)``
and a file carrying code is refused instead of executed. It is written to a
temporary file in the same directory, flushed to disk and renamed over the
old one, so a crash at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnzoo.errors import CnnzooError

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "model_name", "task", "class_names", "model", "config")


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely (tensors and plain data only) and check its shape."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
    if not path.is_file():
        raise CnnzooError(f"no checkpoint at {path}; give a run directory or a .pt file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickler_reason(str(error))
        if "global" in reason.lower():
            raise CnnzooError(
                f"{path} is refused: it holds Python objects, not only tensors and plain data "
                f"({reason}); only load checkpoints from sources you trust"
            ) from None
        raise CnnzooError(f"{path} is not a readable checkpoint ({reason})") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CnnzooError(f"{path} is not a readable checkpoint: {error}") from None
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
        raise CnnzooError(f"{path} is not a cnnzoo checkpoint (expected keys {REQUIRED_KEYS})")
    return payload


def load_weights(model: nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    """Load the checkpoint's weights, or explain that they belong to another network."""
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise CnnzooError(
            f"the weights in {path} do not fit {checkpoint['model_name']!r} as built here "
            f"({first_line}); was the checkpoint written by another model or version?"
        ) from None


def capture_rng_state() -> dict[str, Any]:
    """The state of every random generator training touches, as plain data."""
    _, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unpickler_reason(message: str) -> str:
    """The one informative paragraph of PyTorch's long weights-only refusal."""
    paragraphs = [p.strip() for p in message.split("\n\n") if p.strip()]
    details = [
        p.rpartition("WeightsUnpickler error:")[2].strip()
        for p in paragraphs
        if not p.startswith(("Weights only load failed", "Check the documentation"))
    ]
    return next((d for d in details if d), "unsupported content")


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]
