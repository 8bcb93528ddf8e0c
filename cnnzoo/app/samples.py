"""Sample images for the Inspect view, so a network can be looked into without an upload.

A trained run's samples come from the test split of the data it was trained
on (read through the data package, as ``cnnzoo eval`` reads it); a fresh
network's come from the synthetic ``shapes`` set, which needs no download.
Each sample is stored like an upload, with its label mask for segmentation,
so the per-class IoU can be shown.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.app.uploads import ImageStore
from cnnzoo.errors import CnnzooError

SAMPLES = 6  # per source
FRESH_SAMPLE_DATA = "shapes"  # synthetic, offline, with masks


class SampleShelf:
    """The sample images of each data set, read once and kept in the image store."""

    def __init__(self, store: ImageStore) -> None:
        self._store = store
        self._shelf: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def samples(self, source: str, runs_root: Path) -> list[dict[str, Any]]:
        """[{id, name, label}] of sample images suited to ``source``."""
        data, data_dir, channels = self._data_of(source, runs_root)
        with self._lock:
            if data not in self._shelf:
                self._shelf[data] = self._read(data, data_dir, channels)
            return self._shelf[data]

    @staticmethod
    def _data_of(source: str, runs_root: Path) -> tuple[str, str | None, int]:
        from cnnzoo.app.networks import parse_source

        kind, name = parse_source(source)
        if kind != "run":
            return FRESH_SAMPLE_DATA, None, 3
        from cnnzoo.app.runs import resolve_run
        from cnnzoo.runs.config import load_config_file

        config_file = resolve_run(runs_root, name) / "config.yaml"
        if not config_file.is_file():
            raise CnnzooError(f"run {name!r} has no config.yaml naming its data; upload an image")
        config = load_config_file(config_file)
        return str(config.get("data")), config.get("data_dir"), 3

    def _read(self, data: str, data_dir: str | None, channels: int) -> list[dict[str, Any]]:
        from cnnzoo.data import load_data, plain_request
        from cnnzoo.data.mask_pictures import image_to_rgb

        splits = load_data(
            data,
            plain_request(data_dir=Path(data_dir) if data_dir else None, in_channels=channels),
        )
        split = splits.test if splits.test is not None else splits.val
        shown = []
        for index in range(min(SAMPLES, len(split))):
            image, target = split[index]
            label = f"{data} test #{index}"
            image_id, _ = self._store.add_pixels(image_to_rgb(image), label)
            if splits.task == "classification":
                label += f": {splits.class_names[int(target)]}"
            else:
                mask = target.numpy().astype(np.uint8)
                self._store.add_mask(image_id, _png(mask), f"{label} mask")
            shown.append({"id": image_id, "name": label})
        return shown


def _png(mask: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
