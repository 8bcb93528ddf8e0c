"""Every network torchvision also has finds its key converter in cnnzoo.models.weights, and the
converted torchvision state dict names exactly our tensors, with our shapes."""

from __future__ import annotations

import pytest
import torch
import torchvision

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import get_model_entry
from cnnzoo.models.weights import converter_for, torchvision_state_dict
from cnnzoo.models.weights import torchvision as converters

SHARED = [n for n in cnnzoo.list_models() if get_model_entry(n).torchvision is not None]
# torchvision constructor options: GoogLeNet warns unless told how to initialise.
TORCHVISION_OPTIONS: dict[str, dict] = {"googlenet": {"init_weights": False}}


def test_the_shared_networks_cover_every_converter() -> None:
    used = {converter_for(get_model_entry(name).torchvision) for name in SHARED}
    assert used == set(converters.CONVERTERS.values())


@pytest.mark.parametrize("name", SHARED)
def test_converted_keys_and_shapes_are_ours(name: str) -> None:
    entry = get_model_entry(name)
    assert entry.from_torchvision is converter_for(entry.torchvision)
    assert entry.from_torchvision.__module__ == "cnnzoo.models.weights.torchvision"
    with torch.device("meta"):  # names and shapes only
        theirs = torchvision.models.get_model(
            entry.torchvision, weights=None, **TORCHVISION_OPTIONS.get(name, {})
        ).state_dict()
        ours = cnnzoo.create_model(name).state_dict()
    converted = torchvision_state_dict(name, theirs)
    assert converted.keys() == ours.keys()
    assert all(converted[key].shape == ours[key].shape for key in ours)


def test_a_network_without_counterpart_is_refused() -> None:
    with pytest.raises(CnnzooError, match="'alexnet' has no torchvision counterpart"):
        torchvision_state_dict("alexnet", {})
    with pytest.raises(CnnzooError, match="no converter for torchvision's 'swin_t'"):
        converter_for("swin_t")
    with pytest.raises(CnnzooError, match="'alexnet' has no torchvision weights"):
        cnnzoo.create_model("alexnet", pretrained="torchvision")


def test_vgg_converter_finds_blocks_from_the_layer_numbers() -> None:
    with torch.device("meta"):
        state = torchvision.models.vgg11_bn().state_dict()
    converted = converters.vgg(state)
    assert "features.block1.conv1_1.weight" in converted
    assert "features.block3.bn3_2.running_var" in converted  # after two max-pools
    assert "fc8.bias" in converted
    with pytest.raises(CnnzooError, match="not a torchvision VGG state dict"):
        converters.vgg({**state, "extra.weight": state["features.0.weight"]})
