"""Mistakes a user can make with a segmentation network, answered with a clear message."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models import registry


def test_unknown_backbone_names_the_closest() -> None:
    with pytest.raises(CnnzooError, match="unknown model 'resnet35'.*resnet34"):
        cnnzoo.create_model("unet", 2, 3, backbone="resnet35")


def test_a_segmentation_network_is_no_backbone() -> None:
    with pytest.raises(
        CnnzooError, match="'segnet' is a segmentation network; choose a classifier"
    ):
        cnnzoo.create_model("deeplab_v3plus", 2, 3, backbone="segnet")


def test_a_classifier_without_feature_interface_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def plain_classifier(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    entry = registry.ModelEntry(
        "plain_classifier", plain_classifier, "Plain", "-", "classification", None
    )
    monkeypatch.setitem(registry._REGISTRY, "plain_classifier", entry)
    with pytest.raises(CnnzooError, match="backbone 'plain_classifier'.*no feature interface"):
        cnnzoo.create_model("fcn8s", 2, 3, backbone="plain_classifier")


def test_a_backbone_that_cannot_dilate_is_refused_with_the_ones_that_can() -> None:
    with pytest.raises(CnnzooError, match="'alexnet' cannot run at output stride 8.*resnet50"):
        cnnzoo.create_model("deeplab_v1_largefov", 2, 3, backbone="alexnet")


def test_a_backbone_without_the_needed_stride_is_refused() -> None:
    with pytest.raises(CnnzooError, match="no feature map at stride 16"):
        cnnzoo.create_model("fcn16s", 2, 3, backbone="lenet5")


def test_bad_inputs_are_explained() -> None:
    model = cnnzoo.create_model("segnet_basic", 3, 1).eval()
    with pytest.raises(CnnzooError, match="add a batch dimension"):
        model(torch.randn(1, 40, 40))
    with pytest.raises(CnnzooError, match="built for 1-channel input but got 3"):
        model(torch.randn(1, 3, 40, 40))
