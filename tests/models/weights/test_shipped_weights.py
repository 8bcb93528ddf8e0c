"""Weights shipped inside the package (``pretrained="cifar10"``): written, loaded offline, checked.

Each test but the last writes its own shipped folder in ``tmp_path`` from a
random resnet20; the last checks every file in the real shipped folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnzoo.errors import CnnzooError
from cnnzoo.inference.predictor import Predictor
from cnnzoo.models import create_model
from cnnzoo.models.weights import (
    PRETRAINED_SOURCES,
    models_with_shipped_weights,
    pretrained_preprocessing,
    shipped,
    write_shipped,
)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]
# Every network whose weights ship today; empty until the first trained file is added
# (the CIFAR-10 runs are still training), when each one present is checked here.
SHIPPED_NOW = models_with_shipped_weights()

FACTS = {
    "class_names": CLASSES,
    "mean": MEAN,
    "std": STD,
    "image_size": [32, 32],
    "data": "cifar10",
    "command": "cnnzoo train resnet20 --data cifar10",
    "test_accuracy": 0.5,
    "paper_accuracy": 0.9125,
}


def _random_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """A resnet20 whose batch norms are not the identity, so that every tensor matters."""
    torch.manual_seed(seed)
    model = create_model("resnet20", num_classes=10)
    generator = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, tensor in state.items():
        if key.endswith("running_mean"):
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
        elif key.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return state


@pytest.fixture
def shipped_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shipped folder of the test's own, holding resnet20's CIFAR-10 weights."""
    folder = tmp_path / "trained"
    monkeypatch.setattr(shipped, "SHIPPED_FOLDER", folder)
    write_shipped("resnet20", _random_state(), FACTS)
    return folder


def test_the_writer_writes_weights_record_and_card(shipped_folder: Path) -> None:
    names = sorted(p.name for p in shipped_folder.iterdir())
    assert names == ["resnet20-cifar10.json", "resnet20-cifar10.md", "resnet20-cifar10.safetensors"]
    record = json.loads((shipped_folder / "resnet20-cifar10.json").read_text())
    assert record["class_names"] == CLASSES and record["paper_accuracy"] == 0.9125
    assert record["command"] == FACTS["command"] and "Krizhevsky" in record["data_note"]
    assert len(record["recorded_outputs"]["logits"]) == shipped.RECORDED_COUNT
    card = (shipped_folder / "resnet20-cifar10.md").read_text()
    assert "50.00 %" in card and "91.25 %" in card and "Krizhevsky" in card
    assert models_with_shipped_weights() == ["resnet20"]


def test_create_model_reproduces_the_recorded_outputs(shipped_folder: Path) -> None:
    torch.manual_seed(123)  # another initialization than the one written: the file must win
    model = create_model("resnet20", pretrained="cifar10")
    record = shipped.read_record("resnet20")
    assert shipped.recorded_difference(model, record) < 1e-5
    assert model.pretrained_report.reset == ()
    fresh = create_model("resnet20", num_classes=10)
    assert shipped.recorded_difference(fresh, record) > 1e-3  # the check can fail


def test_num_classes_defaults_to_the_weights_classes(shipped_folder: Path) -> None:
    model = create_model("resnet20", pretrained="cifar10")
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_other_classes_keep_the_backbone_and_reset_the_head(shipped_folder: Path) -> None:
    model = create_model("resnet20", num_classes=4, pretrained="cifar10")
    report = model.pretrained_report
    assert report.reset and all(key.startswith("fc.") for key in report.reset)
    _, state = shipped.read_shipped("resnet20")
    assert torch.equal(model.state_dict()["stem.conv.weight"], state["stem.conv.weight"])


def test_preprocessing_is_the_recorded_one(shipped_folder: Path) -> None:
    assert "cifar10" in PRETRAINED_SOURCES
    expected = pretrained_preprocessing("resnet20", "cifar10")
    assert expected["mean"] == MEAN and expected["std"] == STD
    assert expected["crop_size"] == 32 and expected["resize_size"] is None
    assert expected["class_names"] == CLASSES


def test_the_predictor_names_the_classes_and_normalizes_as_trained(shipped_folder: Path) -> None:
    predictor = Predictor.from_model_name("resnet20", pretrained="cifar10")
    assert predictor.class_names == CLASSES
    fed = predictor.transforms(Image.new("RGB", (40, 40), (128, 128, 128)))
    assert fed.shape == (3, 32, 32)
    expected = torch.tensor([(128 / 255 - m) / s for m, s in zip(MEAN, STD)])
    assert torch.allclose(fed[:, 16, 16], expected, atol=1e-4)
    other = Predictor.from_model_name("resnet20", num_classes=3, pretrained="cifar10")
    assert other.class_names == ["0", "1", "2"]


def test_a_network_without_shipped_weights_is_refused_in_one_line(shipped_folder: Path) -> None:
    with pytest.raises(CnnzooError) as caught:
        create_model("resnet32", pretrained="cifar10")
    message = str(caught.value)
    assert "\n" not in message and "'resnet32'" in message and "resnet20" in message
    with pytest.raises(CnnzooError, match="resnet20"):
        pretrained_preprocessing("resnet56", "cifar10")


def test_a_missing_fact_is_refused(tmp_path: Path) -> None:
    facts = {k: v for k, v in FACTS.items() if k != "test_accuracy"}
    with pytest.raises(CnnzooError, match="test_accuracy"):
        write_shipped("resnet20", _random_state(), facts, folder=tmp_path)


def test_the_shipped_folder_exists_and_every_weights_file_has_its_record() -> None:
    folder = shipped.SHIPPED_FOLDER
    assert folder.is_dir() and folder == Path(shipped.__file__).parent / "trained"
    weights = sorted(
        p.name.removesuffix("-cifar10.safetensors") for p in folder.glob("*.safetensors")
    )
    assert weights == SHIPPED_NOW  # none is left out of the check below for a missing record


@pytest.mark.parametrize("name", SHIPPED_NOW)
def test_each_shipped_file_loads_and_reproduces_its_recorded_outputs(name: str) -> None:
    record = shipped.read_record(name)
    model = create_model(name, pretrained="cifar10")
    assert shipped.recorded_difference(model, record) < 1e-5
    assert record["test_accuracy"] is not None and record["paper_accuracy"] is not None
