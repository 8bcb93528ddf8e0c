"""ImageNet weights from torchvision, mapped onto cnnzoo's networks.

Each family file owns a ``from_torchvision`` function that renames a
torchvision state dict into ours; the same mapping is the offline test that
our networks compute exactly what torchvision's do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.registry import ModelEntry, get_model_entry


def torchvision_state_dict(name: str, state_dict: dict[str, Any]) -> dict[str, Any]:
    """Convert a state dict of torchvision's ``entry.torchvision`` model for cnnzoo ``name``."""
    entry = get_model_entry(name)
    if entry.torchvision is None or entry.from_torchvision is None:
        raise CnnzooError(f"{name!r} has no torchvision counterpart to take weights from")
    return entry.from_torchvision(dict(state_dict))


def load_pretrained(model: nn.Module, entry: ModelEntry, source: str) -> None:
    """Load ``source`` weights into ``model`` in place (downloads on first use)."""
    if source != "torchvision":
        raise CnnzooError(f"unknown pretrained source {source!r}; use pretrained='torchvision'")
    if entry.torchvision is None or entry.from_torchvision is None:
        with_weights = ", ".join(_models_with_torchvision_weights())
        raise CnnzooError(
            f"{entry.name!r} has no torchvision weights; models that have: {with_weights}"
        )
    if getattr(model, "in_channels", 3) != 3:
        raise CnnzooError("torchvision's ImageNet weights need in_channels=3")
    import torchvision

    reference = torchvision.models.get_model(entry.torchvision, weights="DEFAULT")
    state = entry.from_torchvision(reference.state_dict())
    own = model.state_dict()
    # A different num_classes keeps our freshly initialised classifier.
    state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in state]
    head_only = all(
        any(k.startswith(h) for h in getattr(model, "head_modules", ())) for k in missing
    )
    if missing and not head_only:
        raise CnnzooError(f"torchvision weights do not fit {entry.name}: missing {missing[:5]}")
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
    if hasattr(model, "transform_input") and hasattr(reference, "transform_input"):
        model.transform_input = reference.transform_input


def _models_with_torchvision_weights() -> list[str]:
    from cnnzoo.registry import list_models

    return [n for n in list_models() if get_model_entry(n).torchvision is not None]
