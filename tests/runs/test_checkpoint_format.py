"""Checkpoint format 2: a run written by format 1 still works everywhere; best.pt stays small."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.inference.predictor import Predictor
from cnnzoo.runs.checkpoint import FORMAT_VERSION, Checkpoint, TrainingState, capture_rng_state

FORMAT1_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "format1-run"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of the format-1 run, so that commands that write beside it leave the fixture."""
    return Path(shutil.copytree(FORMAT1_RUN, tmp_path / "old-run"))


def test_a_format1_file_is_upgraded_in_memory() -> None:
    assert torch.load(FORMAT1_RUN / "last.pt", weights_only=True)["format"] == 1
    last = Checkpoint.load(FORMAT1_RUN / "last.pt")
    assert last.model_name == "lenet1989" and last.epoch == 2 and last.step == 42
    assert last.preprocessing.channels == 1 and last.preprocessing.size == (16, 16)
    assert last.image_size == (16, 16) and len(last.history) == 2
    assert last.training is not None and last.training.optimizer["param_groups"]
    assert last.to_dict()["format"] == FORMAT_VERSION == 2


def test_the_format1_run_is_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["eval", str(FORMAT1_RUN), "--device", "cpu", "--out", str(tmp_path / "eval")]
    assert main(argv) == 0
    recorded = json.loads((FORMAT1_RUN / "metrics.json").read_text())
    out = capsys.readouterr().out
    metrics = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert metrics["top1"] == pytest.approx(recorded["top1"]) and metrics["epochs"] == 2
    assert (tmp_path / "eval" / "report.json").is_file()


def test_the_format1_run_predicts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images = []
    for shade in (0, 200):
        images.append(tmp_path / f"grey{shade}.png")
        Image.new("L", (20, 20), shade).save(images[-1])
    argv = ["predict", str(FORMAT1_RUN), *map(str, images), "--json", "--device", "cpu"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [Path(line["image"]).name for line in lines] == ["grey0.png", "grey200.png"]
    assert all(line["predictions"][0]["class"] in "0123456789" for line in lines)


def test_the_format1_run_is_exported(old_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    assert main(["export", str(old_run), "--format", "safetensors", "--out", str(out)]) == 0
    image = tmp_path / "digit.png"
    Image.new("L", (16, 16), 90).save(image)
    exported, original = Predictor.load(out), Predictor.load(FORMAT1_RUN)
    assert torch.equal(exported(image), original(image))
    assert exported.input_size == (1, 16, 16) and exported.class_names == list("0123456789")


def test_the_format1_run_resumes_into_format2(old_run: Path) -> None:
    assert main(["train", "--resume", "--out", str(old_run), "--epochs", "3", "--quiet"]) == 0
    last = torch.load(old_run / "last.pt", weights_only=True)
    assert last["format"] == 2 and last["epoch"] == 3 and len(last["history"]) == 3


def test_a_run_starts_from_the_format1_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tuned"
    argv = ["train", "lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "1"]
    assert main([*argv, "--init-from", str(FORMAT1_RUN), "--out", str(out)]) == 0
    assert "weights from" in capsys.readouterr().out
    assert Checkpoint.load(out / "best.pt").epoch == 1


def _checkpoint(training: TrainingState | None) -> Checkpoint:
    return Checkpoint(
        model_name="lenet5",
        task="classification",
        class_names=["a", "b"],
        config={"model": "lenet5"},
        weights={"weight": torch.arange(6.0).view(2, 3)},
        preprocessing=Preprocessing(1, (32, 32), None, None),
        image_size=(32, 32),
        epoch=3,
        history=[{"epoch": 1, "val_top1": 0.5}],
        best_score=0.5,
        training=training,
    )


def test_a_format2_checkpoint_round_trips(tmp_path: Path) -> None:
    state = TrainingState(optimizer={"state": {}}, scheduler={}, rng=capture_rng_state())
    original = _checkpoint(state)
    original.save(tmp_path / "last.pt")
    loaded = Checkpoint.load(tmp_path / "last.pt")
    assert torch.equal(loaded.weights["weight"], original.weights["weight"])
    assert loaded.training is not None and loaded.training.optimizer == {"state": {}}
    assert torch.equal(loaded.training.rng["torch"], state.rng["torch"])
    fields = ("model_name", "class_names", "config", "preprocessing", "image_size", "history")
    assert all(getattr(loaded, name) == getattr(original, name) for name in fields)
    assert (loaded.epoch, loaded.best_score) == (3, 0.5)


def test_a_trained_run_keeps_training_state_in_last_pt_only(tmp_path: Path) -> None:
    argv = ["train", "lenet1989", "--data", "digits", "--image-size", "16", "--iterations", "2"]
    assert main([*argv, "--optimizer", "adamw", "--model-ema", "0.9", "--out", str(tmp_path)]) == 0
    last = Checkpoint.load(tmp_path / "last.pt")
    assert last.training is not None and last.training.model_ema is not None
    for name in ("best.pt", "best-ema.pt"):
        assert Checkpoint.load(tmp_path / name).training is None, name
        assert "optimizer" not in json.dumps(list(torch.load(tmp_path / name).keys()))
    weights_only = tmp_path / "weights.pt"
    torch.save(Checkpoint.load(tmp_path / "best.pt").weights, weights_only)
    ratio = (tmp_path / "best.pt").stat().st_size / weights_only.stat().st_size
    assert ratio <= 1.1, ratio
    assert (tmp_path / "last.pt").stat().st_size > 2 * weights_only.stat().st_size  # AdamW's
