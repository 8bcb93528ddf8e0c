"""The networks the Inspect view looks into, loaded on demand and cached with a limit.

A source is written ``model:NAME`` (fresh, randomly initialised weights),
``pretrained:NAME`` (torchvision's ImageNet weights, offered only when they
already sit in the torch hub cache, since the app never downloads) or
``run:NAME`` (a trained run under ``--runs``, loaded as ``cnnzoo explain``
loads it: ``torch.load(weights_only=True)``, so a checkpoint that holds
pickled code is refused with the command line's message).

Loaded networks are :class:`~cnnzoo.inference.predictor.Predictor` objects
in a least-recently-used cache of :data:`CACHE_SIZE` entries, so memory stays
bounded however many networks a session visits. Each network has a lock
(:func:`network_lock`): the instruments attach hooks to it for one request at
a time, while requests about different networks run side by side in the
server's thread pool.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from cnnzoo.errors import CnnzooError

if TYPE_CHECKING:  # the inference and analysis modules load torch: imported on first use
    from torch import nn

    from cnnzoo.analysis.receptive_field import FieldInfo
    from cnnzoo.inference.predictor import Predictor

CACHE_SIZE = 4  # a ResNet-50 holds 100 MB of weights; four such stay well inside 4 GB
SOURCE_KINDS = ("model", "pretrained", "run")

# Per loaded network (by its module, forgotten with it): its lock and its fields per input size.
_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.Lock] = weakref.WeakKeyDictionary()
_FIELDS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], dict[str, FieldInfo]]] = (
    weakref.WeakKeyDictionary()
)
_GUARD = threading.Lock()


def network_lock(predictor: Predictor) -> threading.Lock:
    """The lock that serialises the use of ``predictor``'s network (hooks attached to it)."""
    with _GUARD:
        return _LOCKS.setdefault(predictor.model, threading.Lock())


def receptive_fields_of(predictor: Predictor, input_shape: tuple[int, ...]) -> dict[str, FieldInfo]:
    """Every layer's receptive field for inputs of ``input_shape`` (C, H, W), computed once per
    network and size; hold :func:`network_lock`."""
    from cnnzoo.analysis.receptive_field import receptive_fields

    with _GUARD:
        sizes = _FIELDS.setdefault(predictor.model, {})
    if input_shape not in sizes:
        sizes[input_shape] = receptive_fields(predictor.model, input_shape)
    return sizes[input_shape]


def parse_source(source: str) -> tuple[str, str]:
    """(kind, name) of ``kind:name``; a bare name is a fresh network."""
    kind, _, name = source.partition(":") if ":" in source else ("model", "", source)
    if kind not in SOURCE_KINDS or not name:
        raise CnnzooError(
            f"{source!r} is not a network source; write model:NAME, pretrained:NAME or run:NAME"
        )
    return kind, name


def pretrained_weights_file(name: str) -> Path | None:
    """Where torchvision's weights for ``name`` sit in the torch hub cache (None: it has none)."""
    import torch
    import torchvision

    from cnnzoo.models.registry import get_model_entry

    architecture = get_model_entry(name).torchvision
    if architecture is None:
        return None
    weights = torchvision.models.get_model_weights(architecture).DEFAULT
    file_name = Path(urlparse(weights.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def has_pretrained(name: str) -> bool:
    path = pretrained_weights_file(name)
    return path is not None and path.is_file()


def open_source(source: str, runs_root: Path) -> Predictor:
    """Build or read the network ``source`` names, in evaluation mode on the CPU."""
    from cnnzoo.app.runs import resolve_run
    from cnnzoo.inference.predictor import Predictor
    from cnnzoo.models.registry import get_model_entry

    kind, name = parse_source(source)
    if kind == "run":
        return Predictor.load(resolve_run(runs_root, name))
    entry = get_model_entry(name)  # an unknown name: the registry's message, with close names
    if kind == "model":
        return Predictor.from_model_name(name)
    if entry.input_size[0] != 3 or not has_pretrained(name):
        raise CnnzooError(
            f"torchvision's weights for {name} are not in the torch hub cache and the app "
            "never downloads; load them once with create_model(name, "
            "pretrained='torchvision'), or inspect model:NAME or a run"
        )
    predictor = Predictor.from_model_name(name, pretrained="torchvision")
    predictor.source = "torchvision ImageNet weights"
    return predictor


class NetworkCache:
    """Loaded networks by source, at most ``capacity``, the least recently used dropped first."""

    def __init__(self, runs_root: Path, capacity: int = CACHE_SIZE) -> None:
        if capacity < 1:
            raise CnnzooError(f"the network cache must hold at least 1 network, got {capacity}")
        self.runs_root = runs_root
        self.capacity = capacity
        self._networks: OrderedDict[str, Predictor] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._networks)

    def get(self, source: str) -> Predictor:
        """The network of ``source``, loaded once even when many requests ask at the same time."""
        with self._guard:
            network = self._cached(source)
            if network is not None:
                return network
            loading = self._loading.setdefault(source, threading.Lock())
        with loading:
            with self._guard:
                network = self._cached(source)
            if network is not None:
                return network
            try:
                network = open_source(source, self.runs_root)
            finally:
                with self._guard:
                    self._loading.pop(source, None)
            with self._guard:
                self._networks[source] = network
                while len(self._networks) > self.capacity:
                    self._networks.popitem(last=False)
        return network

    def _cached(self, source: str) -> Predictor | None:
        network = self._networks.get(source)
        if network is not None:
            self._networks.move_to_end(source)
        return network
