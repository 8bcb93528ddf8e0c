"""A file that breaks during training: the run stops naming it with last.pt intact, or skips it.

The data is an image/mask folder read from disk sample by sample, so a
truncated JPEG passes the header scan at load and fails only when an epoch
decodes it, the case a streamed data set meets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch import nn

import cnnzoo.train.trainer as trainer_module
from cnnzoo.cli import main
from cnnzoo.data import load_data, plain_request
from cnnzoo.data.bad_images import BadImage
from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.directory import RUN_FILES, SKIPPED_IMAGES, record_skipped_images
from cnnzoo.train import TrainConfig, train

PAIRS = 10
SIZE = 16


@pytest.fixture(autouse=True)
def tiny_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """fcn32s's name and task, built as one convolution: an epoch takes milliseconds."""
    monkeypatch.setattr(
        trainer_module, "create_model", lambda *a, num_classes, in_channels, **k: nn.Sequential(
            nn.Conv2d(in_channels, 4, 3, padding=1), nn.BatchNorm2d(4),
            nn.Conv2d(4, num_classes, 1),
        ),
    )  # fmt: skip


def image_mask_folder(root: Path) -> str:
    rng = np.random.default_rng(0)
    for index in range(PAIRS):
        for folder in ("images", "masks"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{index}.jpg", quality=95)
        Image.fromarray((pixels[..., 0] > 127).astype(np.uint8)).save(
            root / "masks" / f"{index}.png"
        )
    return f"folder:{root / 'images'},{root / 'masks'}"


def training_image(spec: str) -> Path:
    """An image the training split reads (not a validation one)."""
    return load_data(spec, plain_request()).train.pairs[0][0]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda") + 30])  # header whole, pixels cut short


def config(spec: str, out: Path, **changes: object) -> TrainConfig:
    values = dict(
        model="fcn32s", data=spec, image_size=SIZE, in_channels=3, epochs=1, batch_size=4,
        augment="none", quiet=True, plots=False, threads=1, out=str(out),
    )  # fmt: skip
    return TrainConfig(**{**values, **changes})


def test_a_file_that_breaks_stops_the_run_and_keeps_last_pt_for_resume(tmp_path: Path) -> None:
    spec, run = image_mask_folder(tmp_path / "data"), tmp_path / "run"
    assert train(config(spec, run)).completed
    last = (run / "last.pt").read_bytes()

    bad = training_image(spec)
    original = bad.read_bytes()
    truncate(bad)
    with pytest.raises(CnnzooError) as raised:
        train(config(spec, run, epochs=2), resume=True)
    message = str(raised.value)
    assert message.startswith(f"cannot read image {bad}") and "\n" not in message
    assert "--skip-bad-images" in message
    assert (run / "last.pt").read_bytes() == last
    assert not (run / SKIPPED_IMAGES).exists()

    bad.write_bytes(original)
    resumed = train(config(spec, run, epochs=2), resume=True)
    assert resumed.completed and resumed.metrics["epochs"] == 2
    assert resumed.metrics["skipped_images"] == 0
    assert Checkpoint.load(run / "last.pt").epoch == 2


def test_skip_bad_images_trains_without_them_and_lists_them(tmp_path: Path) -> None:
    spec, run = image_mask_folder(tmp_path / "data"), tmp_path / "run"
    splits = load_data(spec, plain_request())
    bad = sorted([splits.train.pairs[0][0], splits.val.pairs[0][0]])  # one of each split
    for path in bad:
        truncate(path)
    args = ["train", "fcn32s", "--data", spec, "--image-size", str(SIZE), "--in-channels", "3"]
    args += ["--epochs", "2", "--batch-size", "4", "--augment", "none", "--quiet"]
    args += ["--no-plots", "--threads", "1", "--workers", "2", "--out", str(run)]
    assert main([*args, "--skip-bad-images"]) == 0
    listed = (run / SKIPPED_IMAGES).read_text().splitlines()
    assert [line.split("\t")[0] for line in listed] == [str(path) for path in bad]
    assert all("truncated" in line.split("\t")[1] for line in listed)
    assert json.loads((run / "metrics.json").read_text())["skipped_images"] == 2
    assert SKIPPED_IMAGES in RUN_FILES  # --force removes it with the rest of a run


def test_a_resumed_run_lists_each_skipped_file_once(tmp_path: Path) -> None:
    first, second = BadImage("/a.jpg", "cannot read image /a.jpg"), BadImage("/b.jpg", "no")
    assert record_skipped_images(tmp_path, []) == 0
    assert not (tmp_path / SKIPPED_IMAGES).exists()
    assert record_skipped_images(tmp_path, [first]) == 1
    assert record_skipped_images(tmp_path, [first, second]) == 2
    assert (tmp_path / SKIPPED_IMAGES).read_text().splitlines() == [
        "/a.jpg\tcannot read image /a.jpg",
        "/b.jpg\tno",
    ]


def test_a_mask_that_cannot_be_read_stops_the_scan_or_is_skipped_and_listed(
    tmp_path: Path,
) -> None:
    spec, run = image_mask_folder(tmp_path / "data"), tmp_path / "run"
    bad = tmp_path / "data" / "masks" / "3.png"
    bad.write_bytes(b"")  # found by the scan before training, not by a batch
    with pytest.raises(CnnzooError, match=f"cannot read mask {bad}.*--skip-bad-images"):
        train(config(spec, run))
    result = train(config(spec, run, skip_bad_images=True), force=True)
    assert result.completed and result.metrics["skipped_images"] == 1
    (line,) = (run / SKIPPED_IMAGES).read_text().splitlines()
    assert line.startswith(f"{bad}\tcannot read mask {bad}")
