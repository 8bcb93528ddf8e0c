"""Every registered classifier, tested from the registry: a new model is covered on the day
it is registered. Per-model exceptions sit in the tables at the top."""

from __future__ import annotations

import math

import pytest
import torch

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.base import Classifier
from cnnzoo.models.registry import get_model_entry

CLASSIFIERS = cnnzoo.list_models(task="classification")

# Parameter counts quoted in the papers / torchvision (MISSION.md section 1), exactly:
# (model, num_classes, in_channels, options) -> parameters.
EXACT_PARAMETERS = {
    ("lenet5", 10, 1, ()): 61_706,
    ("alexnet", 1000, 3, ()): 62_378_344,
    ("alexnet", 1000, 3, (("groups", 2),)): 60_965_224,
    ("vgg11", 1000, 3, ()): 132_863_336,
    ("vgg11_bn", 1000, 3, ()): 132_868_840,
    ("vgg13", 1000, 3, ()): 133_047_848,
    ("vgg13_bn", 1000, 3, ()): 133_053_736,
    ("vgg16", 1000, 3, ()): 138_357_544,
    ("vgg16_bn", 1000, 3, ()): 138_365_992,
    ("vgg19", 1000, 3, ()): 143_667_240,
    ("vgg19_bn", 1000, 3, ()): 143_678_248,
    ("googlenet", 1000, 3, ()): 13_004_888,
    ("googlenet", 1000, 3, (("aux_logits", False),)): 6_624_904,
    ("resnet18", 1000, 3, ()): 11_689_512,
    ("resnet34", 1000, 3, ()): 21_797_672,
    ("resnet50", 1000, 3, ()): 25_557_032,
    ("resnet101", 1000, 3, ()): 44_549_160,
    ("resnet152", 1000, 3, ()): 60_192_808,
    ("densenet121", 1000, 3, ()): 7_978_856,
    ("densenet169", 1000, 3, ()): 14_149_480,
    ("densenet201", 1000, 3, ()): 20_013_928,
    ("densenet161", 1000, 3, ()): 28_681_000,
    ("mobilenet_v1", 1000, 3, ()): 4_231_976,
    ("mobilenet_v2", 1000, 3, ()): 3_504_872,
    ("mobilenet_v3_large", 1000, 3, ()): 5_483_032,
    ("mobilenet_v3_small", 1000, 3, ()): 2_542_856,
    ("efficientnet_b0", 1000, 3, ()): 5_288_548,
    ("efficientnet_b1", 1000, 3, ()): 7_794_184,
    ("efficientnet_b2", 1000, 3, ()): 9_109_994,
    ("efficientnet_b3", 1000, 3, ()): 12_233_232,
    ("efficientnet_b4", 1000, 3, ()): 19_341_616,
    ("efficientnet_b5", 1000, 3, ()): 30_389_784,
    ("efficientnet_b6", 1000, 3, ()): 43_040_704,
    ("efficientnet_b7", 1000, 3, ()): 66_347_960,
}

# Networks whose papers give the size rounded: model -> (millions, tolerance), 10 classes
# for the CIFAR networks (He et al. 2015 Table 6; Huang et al. 2016 Table 2), 1000 for
# se_resnet50 (Hu et al. 2017 Table 1 gives ~28.1M).
ROUNDED_PARAMETERS_M: dict[str, tuple[float, float]] = {
    "resnet20": (0.27, 0.005),
    "resnet32": (0.46, 0.005),
    "resnet44": (0.66, 0.005),
    "resnet56": (0.85, 0.005),
    "resnet110": (1.7, 0.05),
    "resnet1202": (19.4, 0.05),
    "densenet40_k12": (1.0, 0.06),
    "densenet_bc100_k12": (0.8, 0.05),
    "se_resnet50": (28.1, 0.05),
}


def _build(name: str, in_channels: int, num_classes: int = 7) -> Classifier:
    return cnnzoo.create_model(name, num_classes=num_classes, in_channels=in_channels)


def _small_input(name: str, in_channels: int, batch: int = 2) -> torch.Tensor:
    size = get_model_entry(name).min_size
    return torch.randn(batch, in_channels, size, size)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_and_backward(name: str, in_channels: int) -> None:
    model = _build(name, in_channels).train()
    output = model(_small_input(name, in_channels))
    outputs = output if isinstance(output, tuple) else (output,)
    assert outputs[0].shape == (2, 7)
    # Auxiliary outputs (GoogLeNet's side classifiers) train their own heads.
    sum(o.sum() for o in outputs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "a parameter received no gradient"
    model.eval()
    with torch.no_grad():
        assert model(_small_input(name, in_channels)).shape == (2, 7)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_nhwc_computes_the_same_function(name: str, assert_layouts_agree) -> None:  # noqa: ANN001
    assert_layouts_agree(_build(name, 3), _small_input(name, 3))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_feature_info_matches_the_feature_maps(name: str) -> None:
    model = _build(name, 3).eval()
    size = 4 * get_model_entry(name).min_size
    # Growing the input by a multiple of every stride grows each stage by exactly
    # step / stride pixels, even where unpadded convolutions and pools (AlexNet's) make
    # size / map size differ from the stride.
    step = math.lcm(*(info.stride for info in model.feature_info))
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        stages = model.forward_stages(x)
        grown = model.forward_stages(torch.randn(1, 3, size + step, size + step))
        features = model.forward_features(x)
    assert len(stages) == len(model.feature_info)
    for info, stage, larger in zip(model.feature_info, stages, grown):
        assert stage.shape[1] == info.channels, info
        assert larger.shape[-1] - stage.shape[-1] == step // info.stride, info
    # equal_nan: an untrained resnet1202 overflows in eval mode (its 600 blocks each add a
    # branch as large as their input while batch norm is still the identity).
    torch.testing.assert_close(features, stages[-1], rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_features_only(name: str) -> None:
    extractor = cnnzoo.create_model(name, in_channels=1, features_only=True).eval()
    with torch.no_grad():
        maps = extractor(_small_input(name, 1, batch=1))
    assert [m.shape[1] for m in maps] == [i.channels for i in extractor.feature_info]
    last = cnnzoo.create_model(name, in_channels=1, features_only=True, out_indices=(-1,))
    assert len(last.feature_info) == 1


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_too_small_input_is_a_clear_error(name: str) -> None:
    model = _build(name, 3).eval()
    size = get_model_entry(name).min_size - 1
    with pytest.raises(CnnzooError, match="needs inputs of at least"):
        model(torch.randn(1, 3, size, size))
    with pytest.raises(CnnzooError, match="channels"):
        model(_small_input(name, 1, batch=1))


def _registered(table: dict) -> list:
    """Rows of a table whose model is registered (families land one at a time)."""
    names = set(cnnzoo.list_models())
    return [
        row for row in table.items() if (row[0] if isinstance(row[0], str) else row[0][0]) in names
    ]


@pytest.mark.parametrize(("key", "expected"), _registered(EXACT_PARAMETERS), ids=str)
def test_parameter_counts_are_exact(key: tuple, expected: int) -> None:
    name, num_classes, in_channels, options = key
    with torch.device("meta"):
        model = cnnzoo.create_model(name, num_classes, in_channels, **dict(options))
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize(("name", "size"), _registered(ROUNDED_PARAMETERS_M))
def test_cifar_parameter_counts_match_the_paper(name: str, size: tuple[float, float]) -> None:
    millions, tolerance = size
    num_classes = 1000 if name == "se_resnet50" else 10
    with torch.device("meta"):
        model = cnnzoo.create_model(name, num_classes=num_classes, in_channels=3)
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - millions) <= tolerance
