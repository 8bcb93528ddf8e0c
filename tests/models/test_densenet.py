"""DenseNet's defining properties: dense concatenation, growth rate, bottleneck and compression."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.densenet import DenseBlock, DenseLayer, Transition
from cnnzoo.models.weights.torchvision import densenet as from_torchvision


def test_each_layer_receives_all_earlier_maps() -> None:
    block = DenseBlock(num_layers=4, in_channels=5, growth_rate=3, bottleneck=False)
    first_convs = [layer.conv.conv for layer in block.layers]
    assert [conv.in_channels for conv in first_convs] == [5, 8, 11, 14]
    assert all(conv.out_channels == 3 for conv in first_convs)


def test_block_output_concatenates_input_and_every_layer() -> None:
    block = DenseBlock(num_layers=4, in_channels=5, growth_rate=3, bottleneck=True).eval()
    x = torch.randn(2, 5, 6, 6)
    with torch.no_grad():
        out = block(x)
    assert out.shape == (2, 5 + 4 * 3, 6, 6)
    assert torch.equal(out[:, :5], x)  # the input itself is passed on, unchanged
    with torch.no_grad():
        first_layer_maps = block.layers[0]([x])
    assert torch.equal(out[:, 5:8], first_layer_maps)


def test_bottleneck_reduces_to_four_k_maps() -> None:
    layer = DenseLayer(in_channels=100, growth_rate=12, bottleneck=True)
    assert layer.bottleneck.conv.kernel_size == (1, 1)
    assert layer.bottleneck.conv.out_channels == 48
    assert layer.conv.conv.in_channels == 48


def test_compression_halves_the_maps_and_the_resolution() -> None:
    transition = Transition(256, compression=0.5)
    out = transition(torch.randn(1, 256, 8, 8))
    assert transition.out_channels == 128
    assert out.shape == (1, 128, 4, 4)
    assert Transition(160, compression=1.0)(torch.randn(1, 160, 8, 8)).shape == (1, 160, 4, 4)


def test_densenet121_stages() -> None:
    model = cnnzoo.create_model("densenet121")
    assert [(i.channels, i.stride) for i in model.feature_info] == [
        (64, 2),
        (256, 4),
        (512, 8),
        (1024, 16),
        (1024, 32),
    ]


def test_cifar_densenets_keep_full_resolution_in_the_first_block() -> None:
    model = cnnzoo.create_model("densenet40_k12", num_classes=10).eval()
    with torch.no_grad():
        stages = model.forward_stages(torch.randn(1, 3, 16, 16))
    assert [s.shape[1:] for s in stages] == [(160, 16, 16), (304, 8, 8), (448, 4, 4)]
    bc = cnnzoo.create_model("densenet_bc100_k12", num_classes=10)
    assert [i.channels for i in bc.feature_info] == [24 + 16 * 12, 108 + 192, 150 + 192]


def test_bc_is_deeper_yet_smaller() -> None:
    # Huang et al. Table 2: DenseNet-BC (L=100) needs fewer parameters than DenseNet (L=40).
    def parameters(name: str) -> int:
        with torch.device("meta"):
            model = cnnzoo.create_model(name, num_classes=10)
        return sum(p.numel() for p in model.parameters())

    assert parameters("densenet_bc100_k12") < parameters("densenet40_k12")


def test_dropout_acts_only_in_training() -> None:
    layer = DenseLayer(in_channels=4, growth_rate=6, bottleneck=False, drop_rate=0.5)
    x = [torch.randn(2, 4, 5, 5)]
    layer.train()
    assert (layer(x) == 0).float().mean() > 0.25
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    assert cnnzoo.create_model("densenet40_k12", drop_rate=0.2).blocks[2].layers[0].drop_rate == 0.2
    with pytest.raises(CnnzooError, match="drop_rate"):
        cnnzoo.create_model("densenet40_k12", drop_rate=1.5)


def test_converter_reads_checkpoints_with_dotted_layer_names() -> None:
    state = torchvision.models.densenet121().state_dict()
    # Older torchvision checkpoints name a layer's parts "norm.1", "conv.2", ...
    dotted = {
        re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()
    }
    assert any(".norm.1." in key for key in dotted)
    assert from_torchvision(dotted).keys() == from_torchvision(state).keys()
    assert from_torchvision(state).keys() == cnnzoo.create_model("densenet121").state_dict().keys()
