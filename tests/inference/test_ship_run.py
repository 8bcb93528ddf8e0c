"""A finished run becomes shipped weights, which load offline and fine-tune like torchvision's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.inference import export
from cnnzoo.models import create_model
from cnnzoo.models.weights import shipped
from cnnzoo.runs.checkpoint import Checkpoint

# A colour resnet20 on the digits (grey images read as RGB): seconds, offline.
TINY = ["resnet20", "--data", "digits", "--image-size", "16", "--epochs", "1", "--quiet"]
TINY += ["--threads", "1", "--no-plots"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished resnet20 run of three channels."""
    folder = tmp_path_factory.mktemp("ship") / "run"
    assert main(["train", *TINY, "--in-channels", "3", "--out", str(folder)]) == 0
    return folder


@pytest.fixture
def shipped_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "trained"
    monkeypatch.setattr(shipped, "SHIPPED_FOLDER", folder)
    return folder


def test_a_run_ships_with_its_facts_and_reproduces(run: Path, shipped_folder: Path) -> None:
    assert export.main([str(run), "--name", "resnet20"]) == 0
    record = json.loads((shipped_folder / "resnet20-cifar10.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    checkpoint = Checkpoint.load(run / "best.pt")
    assert record["test_accuracy"] == metrics["top1"]
    assert record["paper_accuracy"] == export.PAPER_CIFAR10_ACCURACY["resnet20"]
    assert record["command"].startswith("cnnzoo train resnet20 --data digits")
    assert record["mean"] == list(checkpoint.normalization.mean)
    assert record["image_size"] == [16, 16] and record["class_names"] == checkpoint.class_names
    model = create_model("resnet20", pretrained="cifar10")
    assert shipped.recorded_difference(model, record) < 1e-5


def test_fine_tuning_starts_from_the_shipped_weights_and_their_statistics(
    run: Path, shipped_folder: Path, tmp_path: Path
) -> None:
    export.ship_run(run, "resnet20")
    tuned = tmp_path / "tuned"
    assert main(["train", *TINY, "--pretrained", "cifar10", "--out", str(tuned)]) == 0
    checkpoint = Checkpoint.load(tuned / "best.pt")
    record = shipped.read_record("resnet20")
    assert list(checkpoint.normalization.mean) == pytest.approx(record["mean"])
    assert checkpoint.in_channels == 3 and list(checkpoint.image_size) == [16, 16]
    assert checkpoint.recipe.pretrained == "cifar10"


def test_a_run_without_test_accuracy_or_of_another_network_is_refused(
    run: Path, shipped_folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(CnnzooError, match="holds 'resnet20', not 'resnet32'"):
        export.ship_run(run, "resnet32")
    bare = tmp_path / "bare"
    shutil.copytree(run, bare)
    (bare / "metrics.json").unlink()
    with pytest.raises(CnnzooError, match="no test accuracy"):
        export.ship_run(bare, "resnet20")
    assert not shipped_folder.exists()
