"""Classifiers start from torchvision's weights found in the torch hub cache, offline."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import get_model_entry
from cnnzoo.models.weights import hub, pretrained_preprocessing, weights_file_name, weights_folder
from cnnzoo.models.weights.hub import download_weights as real_download  # before the tests' refusal
from cnnzoo.models.weights.torchvision import converter_for


def test_file_names_and_folder_are_torchvisions(torch_home: Path) -> None:
    assert weights_file_name("vgg11") == "vgg11-8a719046.pth"
    assert weights_folder() == torch_home / "hub" / "checkpoints"


def test_a_missing_file_is_named_with_its_folder_in_one_line_at_once(torch_home: Path) -> None:
    with torch.device("meta"):  # the network's shapes; the time measured is the look-up's
        model = cnnzoo.create_model("vgg11")
    start = time.monotonic()
    with pytest.raises(CnnzooError) as error:
        hub.load_pretrained(model, get_model_entry("vgg11"), "torchvision")
    message = str(error.value)
    assert "\n" not in message
    assert "vgg11-8a719046.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "https://download.pytorch.org/models/vgg11-8a719046.pth" in message
    assert "no network in the tests" in message
    assert time.monotonic() - start < 2


def test_without_downloads_the_file_is_only_looked_for() -> None:
    with pytest.raises(CnnzooError, match="downloads are off; download"):
        hub.read_weights("resnet18", download=False)


def test_a_download_lands_whole_and_checked_against_its_name(tmp_path: Path) -> None:
    served = tmp_path / "served.pth"
    served.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()[:8]
    cache = tmp_path / "cache"
    real_download(served.as_uri(), cache / f"net-{digest}.pth")
    assert (cache / f"net-{digest}.pth").read_bytes() == b"weights"
    with pytest.raises(OSError, match="arrived corrupted"):
        real_download(served.as_uri(), cache / "other-0123abcd.pth")
    assert sorted(p.name for p in cache.iterdir()) == [f"net-{digest}.pth"]  # nothing partial


def test_classifier_takes_exactly_the_files_tensors(write_weights) -> None:
    theirs = write_weights("mobilenet_v3_small")
    model = cnnzoo.create_model("mobilenet_v3_small", pretrained="torchvision")
    expected = converter_for("mobilenet_v3_small")(theirs)
    ours = model.state_dict()
    assert expected.keys() == ours.keys()
    assert all(torch.equal(ours[key], expected[key]) for key in expected)
    assert model.pretrained_report.reset == ()


def test_other_classes_reset_the_head_and_say_which(write_weights) -> None:
    theirs = converter_for("mobilenet_v3_small")(write_weights("mobilenet_v3_small"))
    model = cnnzoo.create_model("mobilenet_v3_small", num_classes=7, pretrained="torchvision")
    report = model.pretrained_report
    assert report.reset == ("classifier.weight", "classifier.bias")
    assert model.classifier.weight.shape == (7, 1024)
    ours = model.state_dict()
    assert all(torch.equal(ours[key], theirs[key]) for key in report.loaded)
    assert "hidden.0.weight" in report.loaded  # the head's hidden layer keeps its weights


def test_googlenet_takes_the_input_transform_its_weights_expect(write_weights) -> None:
    write_weights("googlenet", init_weights=False)
    model = cnnzoo.create_model("googlenet", pretrained="torchvision")
    assert model.transform_input
    # The report names the option, so a network rebuilt from a checkpoint transforms too.
    assert model.pretrained_report.options == {"transform_input": True}
    assert cnnzoo.create_model("googlenet", transform_input=True).transform_input


def test_gray_input_is_refused_before_looking_for_weights() -> None:
    with pytest.raises(CnnzooError, match="pretrained weights take 3 channels; build"):
        cnnzoo.create_model("resnet18", in_channels=1, pretrained="torchvision")


def test_weights_of_another_architecture_name_the_first_mismatches(write_weights) -> None:
    write_weights("resnet18", saved_as="resnet34")
    with pytest.raises(CnnzooError) as error:
        cnnzoo.create_model("resnet34", pretrained="torchvision")
    message = str(error.value)
    assert "resnet34-b627a593.pth (resnet34) do not fit 'resnet34'" in message
    assert "'layer1.2.conv1.weight' is not in the file" in message


def test_a_file_the_converter_cannot_read_is_named(write_weights) -> None:
    write_weights("resnet18", saved_as="mobilenet_v3_small")
    with pytest.raises(CnnzooError, match="are not torchvision's mobilenet_v3_small, they are"):
        cnnzoo.create_model("mobilenet_v3_small", pretrained="torchvision")


def test_an_unreadable_file_says_to_place_it_again(torch_home: Path) -> None:
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / weights_file_name("resnet18")).write_bytes(b"truncated")
    with pytest.raises(CnnzooError, match="cannot read the weights in .* delete the file"):
        cnnzoo.create_model("resnet18", pretrained="torchvision")


def test_unknown_source_is_refused() -> None:
    with pytest.raises(CnnzooError, match="use one of: torchvision, imagenet"):
        cnnzoo.create_model("resnet18", pretrained="timm")


def test_preprocessing_comes_from_the_weights_enum() -> None:
    assert pretrained_preprocessing("resnet50") == {
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "resize_size": 232,
        "crop_size": 224,
        "interpolation": "bilinear",
    }
    assert pretrained_preprocessing("vgg16")["resize_size"] == 256
    whole = pretrained_preprocessing("fcn_dilated", backbone="resnet50")
    assert (whole["resize_size"], whole["crop_size"]) == (520, None)
    assert pretrained_preprocessing("unet", backbone="resnet34")["crop_size"] == 224
