"""Every registered segmentation network, tested from the registry: any input size comes back
at that size, for grey and colour input, and gradients reach every parameter. Per-model
options that keep the tests fast sit in the table at the top."""

from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo.models.segmentation.base import SegmentationModel

SEGMENTERS = cnnzoo.list_models(task="segmentation")

# Smaller backbones than the papers' (ResNet-101, VGG-16 with 4096-channel fc6/fc7) keep the
# suite fast; the papers' configurations are covered by the family tests and the slow tests.
FAST_OPTIONS: dict[str, dict] = {
    "fcn32s": {"backbone": "resnet18"},
    "fcn16s": {"backbone": "resnet18"},
    "fcn8s": {"backbone": "resnet18"},
    "fcn_dilated": {"backbone": "resnet18"},
    "deeplab_v2": {"backbone": "resnet18"},
    "deeplab_v3": {"backbone": "resnet18"},
    "deeplab_v3plus": {"backbone": "resnet18"},
}

ODD_SIZE = (97, 131)


def _build(name: str, in_channels: int, num_classes: int = 5) -> SegmentationModel:
    return cnnzoo.create_model(name, num_classes, in_channels, **FAST_OPTIONS.get(name, {}))


def test_every_family_is_registered() -> None:
    expected = {"fcn32s", "fcn16s", "fcn8s", "unet", "segnet", "segnet_basic"}
    expected |= {"deeplab_v1_largefov", "deeplab_v2", "deeplab_v3", "deeplab_v3plus"}
    assert expected <= set(SEGMENTERS)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", SEGMENTERS)
def test_output_has_the_input_size(name: str, in_channels: int) -> None:
    model = _build(name, in_channels).eval()
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, *ODD_SIZE)).shape == (1, 5, *ODD_SIZE)
        assert model(torch.randn(1, in_channels, 7, 12)).shape == (1, 5, 7, 12)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_gradients_reach_every_parameter(name: str) -> None:
    model = _build(name, 3).train()
    output = model(torch.randn(2, 3, 37, 45))
    logits = output[0] if isinstance(output, tuple) else output
    assert logits.shape == (2, 5, 37, 45)
    logits.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing[:3]}"


@pytest.mark.parametrize("name", SEGMENTERS)
def test_nhwc_computes_the_same_function(name: str, assert_layouts_agree) -> None:  # noqa: ANN001
    assert_layouts_agree(_build(name, 3), torch.randn(2, 3, 37, 45))


@pytest.mark.parametrize("name", ["fcn_dilated", "deeplab_v3"])
def test_auxiliary_head_only_in_training(name: str) -> None:
    model = cnnzoo.create_model(name, 4, backbone="resnet18", aux_head=True).train()
    main, aux = model(torch.randn(2, 3, 45, 51))
    assert main.shape == aux.shape == (2, 4, 45, 51)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 45, 51)).shape == (1, 4, 45, 51)


def test_padding_is_undone_exactly() -> None:
    """The crop returns the input's pixels: a network that copies its input gives it back."""

    class Copy(SegmentationModel):
        num_classes, in_channels, size_divisor, min_segment_size = 1, 1, 32, 64

        def segment(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[-1] % 32 == 0 and x.shape[-2] >= 64
            return x

    x = torch.randn(1, 1, 37, 101)
    assert torch.equal(Copy()(x), x)
