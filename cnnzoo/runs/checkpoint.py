"""Checkpoints: everything needed to use a network or to resume its training exactly.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and
dicts -- no pickled objects -- so it loads with ``torch.load(weights_only=True)``
and a file carrying code is refused instead of executed. Before any weights
are used, the checkpoint is checked against what this installation can build
(a registered model, its task, a list of class names, tensors whose names and
shapes fit the network), so a mismatch is a clear error rather than a crash
or silently wrong predictions. It is written to a temporary file in the same
directory, flushed to disk and renamed over the old one (then the directory
itself is flushed, so the rename survives a power cut), so a crash at any
moment leaves the previous checkpoint intact.
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
from cnnzoo.models.registry import get_model_entry

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "model_name", "task", "class_names", "model", "config")


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
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
    _fsync_directory(path.parent)


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
    validate_checkpoint(payload, path)
    return payload


def validate_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """Check what a checkpoint says about itself before anything is built from it."""
    version = checkpoint["format"]
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CnnzooError(
            f"{path} has checkpoint format {version!r}; this cnnzoo reads formats 1 to "
            f"{FORMAT_VERSION}. Upgrade cnnzoo to read newer checkpoints"
        )
    name = checkpoint["model_name"]
    if not isinstance(name, str):
        raise CnnzooError(f"{path} names no model (model_name is {name!r})")
    try:
        entry = get_model_entry(name)
    except CnnzooError as error:
        raise CnnzooError(f"{path} was written for a model this cnnzoo lacks: {error}") from None
    if checkpoint["task"] != entry.task:
        raise CnnzooError(
            f"{path} says {name!r} is a {checkpoint['task']!r} network, but it is a "
            f"{entry.task} network; the file was edited or written by another program"
        )
    classes = checkpoint["class_names"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise CnnzooError(f"{path} must list its class names as strings, got {classes!r}")
    weights = checkpoint["model"]
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise CnnzooError(f"{path} holds no state dict of named tensors under 'model'")
    if not isinstance(checkpoint["config"], dict):
        raise CnnzooError(f"{path} holds no training configuration under 'config'")


def load_weights(model: nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    """Load the checkpoint's weights, or explain which tensors belong to another network."""
    problems = weight_mismatches(model.state_dict(), checkpoint["model"])
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        shown = "; ".join(problems[:3]) + more
        raise CnnzooError(
            f"the weights in {path} do not fit {checkpoint['model_name']!r} with "
            f"{len(checkpoint['class_names'])} classes as built here ({shown}); was the "
            "checkpoint written by another model, options or version?"
        )
    model.load_state_dict(checkpoint["model"])


def weight_mismatches(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What keeps ``found`` from loading into a model whose state dict is ``expected``."""
    problems = [f"{name} is missing" for name in expected if name not in found]
    problems += [f"{name} is not part of the network" for name in found if name not in expected]
    problems += [
        f"{name} is {list(found[name].shape)} in the file but {list(tensor.shape)} here"
        for name, tensor in expected.items()
        if name in found and found[name].shape != tensor.shape
    ]
    return problems


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
    """The one informative sentence of PyTorch's long weights-only refusal.

    It is either a paragraph of its own ("Trying to load unsupported GLOBAL
    posix.system whose module posix is blocked.") or follows "WeightsUnpickler
    error:" ("Unsupported global: GLOBAL io.open was not an allowed global by
    default"), followed by advice to allow-list the global, which is exactly
    what a user must not do with a file that asks for it.
    """
    _, found, detail = message.partition("WeightsUnpickler error:")
    if found:
        return detail.strip().split("\n")[0].split(". ")[0].strip() or "unsupported content"
    paragraphs = [p.strip() for p in message.split("\n\n") if p.strip()]
    details = [
        p
        for p in paragraphs
        if not p.startswith(("Weights only load failed", "Check the documentation"))
    ]
    return details[0] if details else "unsupported content"


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (POSIX; Windows has no directory handles)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]
