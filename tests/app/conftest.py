"""Runs, images and a live server for the app's tests, all tiny (LeNet-5 at 32x32)."""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.models.registry import create_model
from cnnzoo.runs.checkpoint import save_checkpoint
from cnnzoo.runs.config import TrainConfig

CLASSES = [str(digit) for digit in range(10)]
LOG_HEADER = "epoch,step,lr,train_loss,train_top1,val_top1,val_loss,seconds"


def log_row(epoch: int) -> str:
    """One epoch's line of log.csv: losses falling, accuracies rising."""
    values = (0.05, 2.0 / epoch, 0.5 + epoch / 40, 0.6 + epoch / 50, 1.5 / epoch, 0.5)
    return ",".join([str(epoch), str(10 * epoch), *(f"{v:.4f}" for v in values)])


def write_run(
    folder: Path,
    *,
    epochs: int = 3,
    finished: bool = True,
    seed: int = 0,
    classes: list[str] = CLASSES,
) -> Path:
    """A LeNet-5 run on ``classes`` (default the digits), as `cnnzoo train` leaves one."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = TrainConfig(model="lenet5", data="digits", image_size=32, epochs=epochs)
    save_checkpoint(
        {
            "format": 1,  # as the code before the typed Checkpoint wrote it
            "model_name": "lenet5",
            "task": "classification",
            "class_names": list(classes),
            "in_channels": 1,
            "image_size": [32, 32],
            "normalization": None,
            "config": config.to_dict(),
            "model": create_model("lenet5", num_classes=len(classes), in_channels=1).state_dict(),
            "epoch": epochs,
        },
        folder / "best.pt",
    )
    (folder / "config.yaml").write_text("model: lenet5\ndata: digits\nimage_size: 32\n")
    (folder / "log.csv").write_text(
        "\n".join([LOG_HEADER, *(log_row(e) for e in range(1, epochs + 1))]) + "\n"
    )
    if finished:
        metrics = {
            "model": "lenet5",
            "top1": 0.9 + seed / 100,
            "epochs": epochs,
            "train_seconds": 5,
        }
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(root / "first", seed=0)
    write_run(root / "second", epochs=4, seed=1)
    return root


def png_bytes(height: int = 40, width: int = 48, mode: str = "RGB") -> bytes:
    """A small picture with some structure (a bright square on a gradient)."""
    pixels = np.tile(np.linspace(0, 200, width, dtype=np.uint8), (height, 1))
    pixels[height // 4 : height // 2, width // 4 : width // 2] = 255
    image = Image.fromarray(pixels, "L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def declared_giant_png(width: int = 12_000, height: int = 10_000) -> bytes:
    """A PNG of a few bytes whose header declares ``width`` x ``height`` pixels (120 MP)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


class LiveServer:
    """The app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, runs: Path, cache_size: int = 4) -> None:
        import uvicorn

        from cnnzoo.app.server import address, bind, create_app

        self.app = create_app(runs, cache_size)
        self.socket = bind("127.0.0.1", 0)
        self.url = address(self.socket)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})
        self.thread.daemon = True

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def ask(self, path: str, body: bytes | None = None, timeout: float = 120) -> tuple[int, dict]:
        """(status, JSON answer) of ``path``; ``body`` makes it a POST."""
        request = urllib.request.Request(
            self.url + path, data=body, method="POST" if body is not None else "GET"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def upload(self, data: bytes, name: str = "picture.png") -> str:
        status, answer = self.ask(f"/api/images?name={name}", data)
        assert status == 200, answer
        return answer["id"]


@pytest.fixture
def live_server(runs_root: Path) -> Iterator[LiveServer]:
    with LiveServer(runs_root) as server:
        yield server


@pytest.fixture(scope="session")
def app_kit() -> SimpleNamespace:
    """The helpers above, for test modules (which cannot import a conftest)."""
    return SimpleNamespace(
        LiveServer=LiveServer,
        write_run=write_run,
        log_row=log_row,
        png_bytes=png_bytes,
        declared_giant_png=declared_giant_png,
    )
