"""Segmentation networks start from torchvision's weights as their papers converted them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.weights import hub
from cnnzoo.models.weights.torchvision import converter_for, fcn


@pytest.fixture
def vgg_weights(vgg_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(vgg_home))
    return vgg_home


def file_state(architecture: str) -> dict[str, torch.Tensor]:
    return hub.read_weights(architecture, download=False)[1]


@pytest.mark.slow
def test_fcn32s_fc6_convolution_is_vgg16s_fc6_on_every_7x7_window(vgg_weights: Path) -> None:
    model = cnnzoo.create_model("fcn32s", num_classes=21, pretrained="torchvision")
    theirs = file_state("vgg16")
    # In double precision, so that the two orders of summing 25,088 products agree.
    fc6_weight, fc6_bias = (theirs[f"classifier.0.{t}"].double() for t in ("weight", "bias"))
    pool5 = torch.randn(1, 512, 9, 10, dtype=torch.float64)
    with torch.no_grad():
        as_convolution = model.fully_connected[0].double()(pool5)
        for row, column in [(0, 0), (2, 3), (1, 2)]:
            window = pool5[:, :, row : row + 7, column : column + 7]
            # Flattened as torchvision's VGG flattens pool5 before fc6.
            expected = torch.nn.functional.linear(window.flatten(1), fc6_weight, fc6_bias)
            torch.testing.assert_close(as_convolution[:, :, row, column], expected)
    fc7 = model.fully_connected[3]
    assert torch.equal(fc7.weight.flatten(1), theirs["classifier.3.weight"])
    assert torch.equal(
        model.encoder.model.features.block5.conv5_3.weight, theirs["features.28.weight"]
    )
    assert "score.weight" in model.pretrained_report.reset  # fc8 is not carried over


@pytest.mark.slow
def test_deeplab_largefov_fc6_is_vgg16s_decimated(vgg_weights: Path) -> None:
    model = cnnzoo.create_model("deeplab_v1_largefov", num_classes=21, pretrained="torchvision")
    theirs = file_state("vgg16")
    every_4th, taps = torch.arange(0, 4096, 4), torch.tensor([0, 3, 6])
    fc6 = theirs["classifier.0.weight"].reshape(4096, 512, 7, 7)
    expected = fc6[every_4th][:, :, taps][:, :, :, taps]
    fc6_ours, fc7_ours = model.classifier[0], model.classifier[3]
    assert fc6_ours.weight.shape == (1024, 512, 3, 3) and fc6_ours.dilation == (12, 12)
    assert torch.equal(fc6_ours.weight, expected)
    assert torch.equal(fc6_ours.bias, theirs["classifier.0.bias"][every_4th])
    fc7 = theirs["classifier.3.weight"][every_4th][:, every_4th]
    assert torch.equal(fc7_ours.weight.flatten(1), fc7)
    assert torch.equal(fc7_ours.bias, theirs["classifier.3.bias"][every_4th])
    assert model.pretrained_report.reset == ("classifier.6.weight", "classifier.6.bias")


@pytest.mark.slow
def test_segnet_encoder_computes_vgg16_bn_features(vgg_weights: Path) -> None:
    model = cnnzoo.create_model("segnet", num_classes=11, pretrained="torchvision").eval()
    with torch.device("meta"):
        reference = torchvision.models.vgg16_bn(weights=None)
    reference.load_state_dict(file_state("vgg16_bn"), assign=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = reference.eval().features(x)  # through pool5
        encoded = x
        for stage in model.encoder:
            encoded, _, _ = stage(encoded)
    torch.testing.assert_close(encoded, expected, rtol=1e-4, atol=1e-5)
    assert not any(key.startswith("encoder.") for key in model.pretrained_report.reset)


def test_unet_on_a_backbone_takes_its_weights_into_the_encoder(write_weights) -> None:
    theirs = converter_for("resnet18")(write_weights("resnet18"))
    model = cnnzoo.create_model(
        "unet", num_classes=2, in_channels=3, backbone="resnet18", pretrained="torchvision"
    )
    ours, report = model.state_dict(), model.pretrained_report
    encoder = {f"encoder.model.{k}": v for k, v in theirs.items() if not k.startswith("fc.")}
    assert set(report.loaded) == set(encoder) == {k for k in ours if k.startswith("encoder.")}
    assert all(torch.equal(ours[key], value) for key, value in encoder.items())
    assert report.reset and all(key.startswith(("decoder.", "head.")) for key in report.reset)


def test_fcn_on_mobilenet_takes_the_backbones_weights(write_weights) -> None:
    theirs = converter_for("mobilenet_v2")(write_weights("mobilenet_v2"))
    model = cnnzoo.create_model(
        "fcn8s", num_classes=3, backbone="mobilenet_v2", pretrained="imagenet"
    )
    ours = model.state_dict()
    assert torch.equal(ours["encoder.model.stem.conv.weight"], theirs["stem.conv.weight"])
    assert model.pretrained_report.architecture == "mobilenet_v2"


def test_torchvisions_fcn_resnet50_loads_whole(write_weights) -> None:
    options = {"weights_backbone": None, "aux_loss": True}
    theirs = fcn(write_weights("fcn_resnet50", **options), backbone="resnet50")
    model = cnnzoo.create_model(
        "fcn_dilated", num_classes=21, aux_head=True, pretrained="torchvision"
    )
    ours = model.state_dict()
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


@pytest.mark.slow
def test_fcn_resnet50_for_other_classes_resets_the_heads_or_takes_the_backbone_alone(
    write_weights,
) -> None:
    write_weights("fcn_resnet50", weights_backbone=None, aux_loss=True)
    other_classes = cnnzoo.create_model("fcn_dilated", num_classes=5, pretrained="torchvision")
    assert other_classes.pretrained_report.reset == ("head.2.weight", "head.2.bias")
    write_weights("resnet50")
    backbone_only = cnnzoo.create_model("fcn_dilated", num_classes=5, pretrained="imagenet")
    assert backbone_only.pretrained_report.architecture == "resnet50"


def test_segmentation_weights_of_another_architecture_are_named(write_weights) -> None:
    write_weights("resnet18", saved_as="resnet34")
    with pytest.raises(CnnzooError, match="'encoder.model.layer1.2.conv1.weight' is not in the"):
        cnnzoo.create_model("unet", in_channels=3, backbone="resnet34", pretrained="torchvision")


def test_a_network_on_its_own_encoder_has_no_pretrained_weights() -> None:
    with pytest.raises(CnnzooError, match="on its own encoder has no pretrained weights"):
        cnnzoo.create_model("unet", in_channels=3, pretrained="torchvision")
    with pytest.raises(CnnzooError, match="backbone 'resnet20' has no torchvision weights"):
        cnnzoo.create_model("unet", in_channels=3, backbone="resnet20", pretrained="torchvision")
