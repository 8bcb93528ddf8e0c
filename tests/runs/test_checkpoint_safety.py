"""Checkpoints that carry code are refused by every command; bad checkpoints are clear errors.

A malicious file is built the way an attacker would: an object whose
``__reduce__`` tells the unpickler to call a function, here one that creates a
marker file. The test first shows that a plain ``torch.load`` would run it, then
that no cnnzoo entry point does.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

import cnnzoo.runs.checkpoint as checkpoint_module
from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.predictor import Predictor
from cnnzoo.models.registry import create_model
from cnnzoo.runs.checkpoint import Checkpoint, save_checkpoint
from cnnzoo.runs.config import save_config
from cnnzoo.train import TrainConfig, Trainer, train


class CreatesMarker:
    """Unpickling this calls ``open(marker, "w")``: code run by merely loading a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _lenet_checkpoint(**changes: object) -> dict:
    model = create_model("lenet5", num_classes=10, in_channels=1)
    payload = {
        "format": 1,
        "model_name": "lenet5",
        "task": "classification",
        "class_names": [str(digit) for digit in range(10)],
        "in_channels": 1,
        "image_size": [32, 32],
        "normalization": {"mean": [0.5], "std": [0.25]},
        "ignore_index": None,
        "config": TrainConfig(model="lenet5", data="mnist5k").to_dict(),
        "model": model.state_dict(),
    }
    payload.update(changes)
    return payload


@pytest.fixture
def malicious(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint-shaped file (torch.save's zip format) with a code-carrying object inside."""
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save(_lenet_checkpoint(model={"weight": CreatesMarker(marker)}), path)
    return path, marker


def test_the_malicious_file_really_runs_code_when_unpickled_unsafely(
    malicious: tuple[Path, Path],
) -> None:
    path, marker = malicious
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_checkpoint_carrying_code_is_refused_without_running_it(
    malicious: tuple[Path, Path],
) -> None:
    path, marker = malicious
    with pytest.raises(CnnzooError, match="is refused: it holds Python objects"):
        Checkpoint.load(path)
    with pytest.raises(CnnzooError, match="is refused"):
        Predictor.from_checkpoint(path)
    assert not marker.exists()


def test_the_old_plain_pickle_format_carrying_code_is_refused_too(tmp_path: Path) -> None:
    marker, path = tmp_path / "marker", tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump(_lenet_checkpoint(model=CreatesMarker(marker)), handle, protocol=2)
    with pytest.raises(CnnzooError, match="refused|not a readable checkpoint"):
        Checkpoint.load(path)
    assert not marker.exists()


def test_every_command_that_reads_checkpoints_refuses_it(
    malicious: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path, marker = malicious
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(
        TrainConfig(model="lenet5", data="mnist5k", out=str(run_dir)), run_dir / "config.yaml"
    )
    path.rename(run_dir / "last.pt")
    path = run_dir / "last.pt"
    commands = [
        ["eval", str(path)],
        ["predict", str(path), str(image)],
        ["export", str(path), "--out", str(tmp_path / "model.onnx")],
        ["explain", str(path), str(image), "--out", str(tmp_path / "explain")],
        ["train", "--resume", "--out", str(run_dir)],
    ]
    for command in commands:
        assert main(command) == 2, command
        error = capsys.readouterr().err
        assert "is refused: it holds Python objects" in error, command
        assert "Traceback" not in error
    assert not marker.exists()


# --- what a checkpoint says about itself is checked before use -------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_name": "lenet6"}, "a model this cnnzoo lacks: unknown model 'lenet6'"),
        ({"task": "segmentation"}, "says 'lenet5' is a 'segmentation' network"),
        ({"class_names": "0123456789"}, "must list its class names as strings"),
        ({"class_names": []}, "must list its class names as strings"),
        ({"model": {"weight": [1.0, 2.0]}}, "no state dict of named tensors"),
        ({"config": None}, "no training configuration"),
        ({"format": 99}, "checkpoint format 99; this cnnzoo reads formats 1 to 2"),
    ],
    ids=["model", "task", "class-string", "no-classes", "weights", "config", "format"],
)
def test_a_checkpoint_that_contradicts_itself_is_a_clear_error(
    tmp_path: Path, changes: dict, message: str
) -> None:
    save_checkpoint(_lenet_checkpoint(**changes), tmp_path / "odd.pt")
    with pytest.raises(CnnzooError, match=message):
        Checkpoint.load(tmp_path / "odd.pt")


def test_weights_that_do_not_fit_the_network_name_the_tensors(tmp_path: Path) -> None:
    # Three class names but a ten-class output layer: the file was edited or mixed up.
    save_checkpoint(_lenet_checkpoint(class_names=["a", "b", "c"]), tmp_path / "classes.pt")
    with pytest.raises(CnnzooError, match=r"10, 84\] in the file but \[3, 84\] here"):
        Predictor.from_checkpoint(tmp_path / "classes.pt")
    weights = _lenet_checkpoint()["model"]
    weights["extra.weight"] = weights.pop(next(iter(weights)))
    save_checkpoint(_lenet_checkpoint(model=weights), tmp_path / "renamed.pt")
    with pytest.raises(CnnzooError, match="is missing; extra.weight is not part of the network"):
        Predictor.from_checkpoint(tmp_path / "renamed.pt")


def test_a_resumed_run_must_keep_its_classes(tmp_path: Path) -> None:
    config = TrainConfig(
        model="lenet1989", data="digits", image_size=16, epochs=1, batch_size=64, quiet=True,
        plots=False, threads=1, out=str(tmp_path / "run"),
    )  # fmt: skip
    train(config)
    last = Checkpoint.load(tmp_path / "run" / "last.pt")
    dataclasses.replace(last, class_names=list("abcdefghij")).save(tmp_path / "run" / "last.pt")
    with pytest.raises(CnnzooError, match="was trained on the classes .* resume on the same data"):
        Trainer(config, resume=True)


# --- writing --------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_previous_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(_lenet_checkpoint(), path)
    before = path.read_bytes()

    def disk_full(payload: object, stream: object) -> None:
        stream.write(b"PK\x03\x04 half a checkpoint")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(_lenet_checkpoint(class_names=list("abcdefghij")), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_a_temporary_file_left_by_a_killed_write_is_cleared_by_the_next(tmp_path: Path) -> None:
    (tmp_path / ".last.pt.k1ll3d").write_bytes(b"PK\x03\x04 half a checkpoint")
    save_checkpoint(_lenet_checkpoint(), tmp_path / "last.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_torn_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(_lenet_checkpoint(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CnnzooError, match="not a readable checkpoint"):
        Checkpoint.load(path)
