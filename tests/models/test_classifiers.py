"""Every registered classifier, tested from the registry: a new model is covered on the day
it is registered. Per-model exceptions sit in the tables at the top."""

from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.base import Classifier
from cnnzoo.registry import get_model_entry

CLASSIFIERS = cnnzoo.list_models(task="classification")

# Parameter counts quoted in the papers / torchvision (MISSION.md section 1), exactly:
# (model, num_classes, in_channels, options) -> parameters.
EXACT_PARAMETERS = {
    ("lenet5", 10, 1, ()): 61_706,
}

# CIFAR networks whose papers give the size rounded: model -> (millions, tolerance).
ROUNDED_PARAMETERS_M: dict[str, tuple[float, float]] = {}


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
    logits = output[0] if isinstance(output, tuple) else output
    assert logits.shape == (2, 7)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "a parameter received no gradient"
    model.eval()
    with torch.no_grad():
        assert model(_small_input(name, in_channels)).shape == (2, 7)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_feature_info_matches_the_feature_maps(name: str) -> None:
    model = _build(name, 3).eval()
    # Large enough that valid (unpadded) convolutions barely change the size ratio.
    size = 4 * get_model_entry(name).min_size
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        stages = model.forward_stages(x)
        features = model.forward_features(x)
    assert len(stages) == len(model.feature_info)
    for info, stage in zip(model.feature_info, stages):
        assert stage.shape[1] == info.channels, info
        assert round(size / stage.shape[-1]) == info.stride, info
    assert torch.equal(features, stages[-1])


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


@pytest.mark.parametrize(("key", "expected"), EXACT_PARAMETERS.items(), ids=str)
def test_parameter_counts_are_exact(key: tuple, expected: int) -> None:
    name, num_classes, in_channels, options = key
    with torch.device("meta"):
        model = cnnzoo.create_model(name, num_classes, in_channels, **dict(options))
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize(("name", "size"), ROUNDED_PARAMETERS_M.items())
def test_cifar_parameter_counts_match_the_paper(name: str, size: tuple[float, float]) -> None:
    millions, tolerance = size
    with torch.device("meta"):
        model = cnnzoo.create_model(name, num_classes=10, in_channels=3)
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - millions) <= tolerance
