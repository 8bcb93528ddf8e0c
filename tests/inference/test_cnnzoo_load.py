"""``cnnzoo.load``: a shared folder, a run or a checkpoint, fed exactly as evaluation fed it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import save_file

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.data.streaming import FolderSamples, SampleRecipe
from cnnzoo.inference.predictor import Predictor

ROOT = Path(__file__).resolve().parents[2]
TINY = ["lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "1", "--quiet"]
TINY += ["--threads", "1", "--no-plots"]


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run with its safetensors export in ``RUN/export``."""
    run = tmp_path_factory.mktemp("load") / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    assert main(["export", str(run), "--format", "safetensors"]) == 0
    return run


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Digit-like pictures of other sizes and modes than the 8x8 training images."""
    folder = tmp_path_factory.mktemp("pictures")
    generator = np.random.default_rng(0)
    paths = []
    for index, (size, mode) in enumerate([((12, 12), "L"), ((20, 30), "RGB"), ((16, 16), "L")]):
        pixels = generator.integers(0, 256, (*size, 3 if mode == "RGB" else 1), dtype=np.uint8)
        path = folder / f"digit{index}.png"
        Image.fromarray(pixels.squeeze()).convert(mode).save(path)
        paths.append(path)
    return paths


def test_the_export_computes_exactly_what_the_run_computes(
    shared_run: Path, pictures: list[Path]
) -> None:
    from_export = cnnzoo.load(shared_run / "export")
    for other in (shared_run, shared_run / "best.pt", shared_run / "export" / "model.safetensors"):
        loaded = cnnzoo.load(other)
        assert torch.equal(loaded(pictures), from_export(pictures))
        assert loaded.predict(pictures) == from_export.predict(pictures)
    assert not from_export.model.training and from_export.class_names == list("0123456789")


def test_its_predictions_score_what_the_run_measured_on_the_test_split(shared_run: Path) -> None:
    from dataclasses import replace

    from cnnzoo.data import load_data
    from cnnzoo.runs.config import config_from_dict
    from cnnzoo.runs.plan import data_request

    config = config_from_dict(yaml.safe_load((shared_run / "config.yaml").read_text()))
    test = load_data("digits", replace(data_request(config, (16, 16), 1), augment="none")).test
    scores = cnnzoo.load(shared_run / "export")(list(test.images))
    accuracy = (scores.argmax(1) == test.targets).float().mean().item()
    assert accuracy == pytest.approx(json.loads((shared_run / "metrics.json").read_text())["top1"])


def test_a_run_that_started_from_pretrained_weights_loads_without_them(
    shared_run: Path, tmp_path: Path, pictures: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cnnzoo.models.weights
    from cnnzoo.runs.checkpoint import Checkpoint

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("pretrained weights were looked up")

    monkeypatch.setattr(cnnzoo.models.weights, "load_pretrained", never)
    checkpoint = Checkpoint.load(shared_run / "best.pt")
    recipe = {**checkpoint.config, "model_options": {"pretrained": "torchvision"}}
    dataclasses.replace(checkpoint, config=recipe).save(tmp_path / "best.pt")
    expected = cnnzoo.load(shared_run / "export")(pictures)
    assert torch.equal(cnnzoo.load(tmp_path / "best.pt")(pictures), expected)


def test_predict_names_the_top_classes_most_likely_first(
    shared_run: Path, pictures: list[Path]
) -> None:
    predictions = cnnzoo.load(shared_run / "export").predict(pictures, topk=3)
    assert len(predictions) == 3 and all(len(top) == 3 for top in predictions)
    for top in predictions:
        probabilities = [entry["probability"] for entry in top]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1
        assert {entry["class"] for entry in top} <= set("0123456789")


def test_files_pictures_and_tensors_are_the_same_input(
    shared_run: Path, pictures: list[Path]
) -> None:
    predictor = cnnzoo.load(shared_run / "export")
    path = pictures[1]  # colour: the grey network's reader converts it
    picture = Image.open(path)
    pixels = torch.from_numpy(np.array(picture.convert("L"))).unsqueeze(0)
    batches = [predictor.preprocess([item]) for item in (path, str(path), picture, pixels)]
    assert all(torch.equal(batch, batches[0]) for batch in batches)
    assert torch.equal(predictor.preprocess([pixels.float() / 255]), batches[0])
    assert torch.equal(predictor.preprocess(path), batches[0])  # one image is a batch of one
    assert torch.equal(predictor.preprocess(pixels.unsqueeze(0)), batches[0])
    assert batches[0].shape == (1, 1, 16, 16)


def test_preprocessing_is_what_evaluation_held_in_memory_does(shared_run: Path) -> None:
    predictor = cnnzoo.load(shared_run)
    images = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    split = InMemoryImages(
        images, torch.zeros(3), predictor.preprocessing.normalization, size=(16, 16)
    )
    expected, _ = split.batch(torch.arange(3))
    assert torch.equal(predictor.preprocess(list(images)), expected)


def test_preprocessing_is_what_evaluation_of_a_streamed_folder_does(
    pictures: list[Path],
) -> None:
    normalization = Normalization((0.5,), (0.25,))
    feed = Preprocessing(channels=1, size=(8, 8), crop_ratio=0.875, normalization=normalization)
    recipe = SampleRecipe(size=(8, 8), channels=1, crop_ratio=0.875)
    samples = FolderSamples(pictures, torch.zeros(len(pictures)), recipe)
    for index, path in enumerate(pictures):
        expected = normalization.apply_to_bytes(samples[(index, 0)][0].unsqueeze(0))
        assert torch.equal(feed([path]), expected)


def test_a_segmentation_network_labels_each_pixel_at_the_image_size(pictures: list[Path]) -> None:
    network = cnnzoo.create_model("segnet_basic", num_classes=3, in_channels=1).eval()
    feed = Preprocessing(channels=1, size=None, crop_ratio=None, normalization=None)
    labels = Predictor(network, ["a", "b", "c"], "segmentation", feed).predict(pictures[:2])
    assert [tuple(label.shape) for label in labels] == [(12, 12), (20, 30)]
    assert all(int(label.max()) < 3 for label in labels)


def _refused(location: Path, message: str) -> None:
    with pytest.raises(cnnzoo.CnnzooError, match=message) as raised:
        cnnzoo.load(location)
    assert "\n" not in str(raised.value)


def test_a_folder_that_is_neither_an_export_nor_a_run_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "neither an export folder .*config.json.* nor a run directory")
    _refused(tmp_path / "missing", "does not exist")


def test_weights_of_another_architecture_name_the_keys_that_do_not_fit(
    shared_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "config.json").write_text((shared_run / "export" / "config.json").read_text())
    other = cnnzoo.create_model("lenet5", num_classes=10, in_channels=1).state_dict()
    save_file(
        {name: tensor.contiguous() for name, tensor in other.items()}, folder / "model.safetensors"
    )
    _refused(
        folder, r"do not fit 'lenet1989' with 10 classes .*is (missing|not part of the network)"
    )


def test_a_broken_or_newer_export_is_refused_in_one_line(shared_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    config = json.loads((shared_run / "export" / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config))
    _refused(folder, "has config.json but no model.safetensors")
    (folder / "model.safetensors").write_bytes(b"not tensors")
    _refused(folder, "is not a readable safetensors file")
    (folder / "config.json").write_text(json.dumps({**config, "format": 99}))
    _refused(folder, "export format 99")
    (folder / "config.json").write_text(json.dumps({**config, "task": "segmentation"}))
    _refused(folder, "is a classification network")
    (folder / "config.json").write_text("{")
    _refused(folder, "is not readable JSON")


def test_an_input_that_is_no_image_is_refused(shared_run: Path) -> None:
    predictor = cnnzoo.load(shared_run / "export")
    with pytest.raises(cnnzoo.CnnzooError, match=r"give file paths, Pillow images or \(1, H, W\)"):
        predictor.preprocess([torch.zeros(3, 8, 8)])
    with pytest.raises(cnnzoo.CnnzooError, match="no images given"):
        predictor.predict([])


def test_import_cnnzoo_imports_neither_torch_nor_training_nor_inference() -> None:
    heavy = "('cnnzoo.train', 'cnnzoo.inference', 'cnnzoo.evaluation', 'torch')"
    code = f"import sys, cnnzoo; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_streamed_run_is_fed_center_crops_and_a_segmentation_run_whole_images(
    shared_run: Path,
) -> None:
    from cnnzoo.runs.checkpoint import Checkpoint, format1_preprocessing

    checkpoint = Checkpoint.load(shared_run / "best.pt")
    recorded = checkpoint.preprocessing
    assert recorded.crop_ratio is None  # digits are held in memory
    # A format-1 file written before the trainer recorded its preprocessing: read from its fields.
    stats = recorded.normalization
    older = {
        "format": 1, "model_name": checkpoint.model_name, "task": checkpoint.task,
        "in_channels": checkpoint.in_channels, "image_size": list(checkpoint.image_size),
        "normalization": {"mean": list(stats.mean), "std": list(stats.std)},
        "config": checkpoint.config,
    }  # fmt: skip
    assert format1_preprocessing(older) == recorded
    folder = {**older["config"], "data": "folder:images", "data_mode": "stream"}
    streamed = {**older, "config": folder}
    assert format1_preprocessing(streamed).crop_ratio == 0.875
    segmenting = {**streamed, "task": "segmentation"}
    assert format1_preprocessing(segmenting).size is None
    assert format1_preprocessing(segmenting).crop_ratio is None
