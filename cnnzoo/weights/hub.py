"""torchvision's ImageNet weights, downloaded on first use and loaded into our networks.

``create_model(name, pretrained="torchvision")`` comes here: torchvision builds
its counterpart with its released weights, :mod:`cnnzoo.weights.torchvision`
renames the state dict, and the tensors that fit are loaded. A different
``num_classes`` keeps our freshly initialised classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.registry import ModelEntry, get_model_entry, list_models
from cnnzoo.weights.torchvision import converter_for

PRETRAINED_SOURCES = ("torchvision",)


def load_pretrained(model: nn.Module, entry: ModelEntry, source: str) -> None:
    """Load ``source`` weights into ``model`` in place (downloads on first use)."""
    if source not in PRETRAINED_SOURCES:
        raise CnnzooError(f"unknown pretrained source {source!r}; use pretrained='torchvision'")
    if entry.torchvision is None:
        with_weights = ", ".join(models_with_torchvision_weights())
        raise CnnzooError(
            f"{entry.name!r} has no torchvision weights; models that have: {with_weights}"
        )
    if getattr(model, "in_channels", 3) != 3:
        raise CnnzooError("torchvision's ImageNet weights need in_channels=3")
    import torchvision

    reference = torchvision.models.get_model(entry.torchvision, weights="DEFAULT")
    state = converter_for(entry.torchvision)(reference.state_dict())
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


def models_with_torchvision_weights() -> list[str]:
    """Registered networks that torchvision also has, so that its weights fit them."""
    return [n for n in list_models() if get_model_entry(n).torchvision is not None]
