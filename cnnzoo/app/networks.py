"""The networks the Inspect view looks into, loaded on demand and cached with a limit.

A source is written ``model:NAME`` (fresh, randomly initialised weights),
``pretrained:NAME`` (torchvision's ImageNet weights, offered only when they
already sit in the torch hub cache, since the app never downloads) or
``run:NAME`` (a trained run under ``--runs``, loaded as ``cnnzoo explain``
loads it: ``torch.load(weights_only=True)``, so a checkpoint that holds
pickled code is refused with the command line's message).

Loaded networks live in a least-recently-used cache of :data:`CACHE_SIZE`
entries, so memory stays bounded however many networks a session visits.
Each entry carries a lock: the instruments attach hooks to the network for
one request at a time, while requests about different networks run side by
side in the server's thread pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from cnnzoo.errors import CnnzooError

if TYPE_CHECKING:  # the analysis modules load torchvision: imported when a network is first asked
    from cnnzoo.analysis.loading import AnalysedModel
    from cnnzoo.analysis.receptive_field import FieldInfo

CACHE_SIZE = 4  # a ResNet-50 holds 100 MB of weights; four such stay well inside 4 GB
SOURCE_KINDS = ("model", "pretrained", "run")


@dataclass
class Network:
    """A loaded network, the lock that serialises its use and its receptive fields per size."""

    source: str
    analysed: AnalysedModel
    lock: threading.Lock = field(default_factory=threading.Lock)
    fields: dict[tuple[int, ...], dict[str, FieldInfo]] = field(default_factory=dict)

    def receptive_fields(self, input_shape: tuple[int, ...]) -> dict[str, FieldInfo]:
        """Every layer's receptive field for inputs of ``input_shape`` (C, H, W); hold the lock."""
        from cnnzoo.analysis.receptive_field import receptive_fields

        if input_shape not in self.fields:
            self.fields[input_shape] = receptive_fields(self.analysed.model, input_shape)
        return self.fields[input_shape]


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


def load_network(source: str, runs_root: Path) -> AnalysedModel:
    """Build or read the network ``source`` names, in evaluation mode on the CPU."""
    from cnnzoo.analysis.loading import load_analysed
    from cnnzoo.app.runs import resolve_run

    kind, name = parse_source(source)
    if kind == "run":
        return load_analysed(str(resolve_run(runs_root, name)))
    analysed = load_analysed(name)  # an unknown name: the registry's message, with close names
    if kind == "pretrained":
        if analysed.in_channels != 3 or not has_pretrained(name):
            raise CnnzooError(
                f"torchvision's weights for {name} are not in the torch hub cache and the app "
                "never downloads; load them once with create_model(name, "
                "pretrained='torchvision'), or inspect model:NAME or a run"
            )
        from cnnzoo.models.registry import get_model_entry
        from cnnzoo.models.weights import load_pretrained

        load_pretrained(analysed.model, get_model_entry(name), "torchvision")
        analysed.source = "torchvision ImageNet weights"
    return analysed


class NetworkCache:
    """Loaded networks by source, at most ``capacity``, the least recently used dropped first."""

    def __init__(self, runs_root: Path, capacity: int = CACHE_SIZE) -> None:
        if capacity < 1:
            raise CnnzooError(f"the network cache must hold at least 1 network, got {capacity}")
        self.runs_root = runs_root
        self.capacity = capacity
        self._networks: OrderedDict[str, Network] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._networks)

    def get(self, source: str) -> Network:
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
                network = Network(source, load_network(source, self.runs_root))
            finally:
                with self._guard:
                    self._loading.pop(source, None)
            with self._guard:
                self._networks[source] = network
                while len(self._networks) > self.capacity:
                    self._networks.popitem(last=False)
        return network

    def _cached(self, source: str) -> Network | None:
        network = self._networks.get(source)
        if network is not None:
            self._networks.move_to_end(source)
        return network
