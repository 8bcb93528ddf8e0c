import dataclasses
import inspect

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.analysis.loading import resolve_input
from cnnzoo.errors import CnnzooError
from cnnzoo.models import registry
from cnnzoo.models.registry import ModelEntry, check_input_size, get_model_entry, register_model


def test_list_models_wildcards() -> None:
    assert "lenet5" in cnnzoo.list_models()
    assert cnnzoo.list_models("lenet*") == ["lenet1989", "lenet5"]
    assert cnnzoo.list_models("no-such-*") == []


def test_registering_a_name_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_model(family="LeNet", paper="duplicate")
        def lenet5(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
            return nn.Identity()


def test_unknown_name_lists_the_closest() -> None:
    with pytest.raises(CnnzooError, match="Did you mean: lenet5"):
        cnnzoo.create_model("lenet6")


@pytest.mark.parametrize("field", ["num_classes", "in_channels"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_impossible_sizes_are_refused(field: str, value: object) -> None:
    with pytest.raises(CnnzooError, match=f"{field} must be a positive integer"):
        cnnzoo.create_model("lenet5", **{field: value})


def test_unknown_option_names_the_accepted_ones() -> None:
    with pytest.raises(CnnzooError, match="does not take option"):
        cnnzoo.create_model("lenet5", color="blue")


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_sizes_are_read_from_the_network(name: str) -> None:
    entry = get_model_entry(name)
    with torch.device("meta"):
        network = entry.builder()
    assert entry.input_size == tuple(network.input_size)
    assert entry.min_size == network.min_input_size


def test_no_registration_restates_a_size_or_a_converter() -> None:
    stated = {field.name for field in dataclasses.fields(ModelEntry)}
    accepted = set(inspect.signature(register_model).parameters)
    for fact in ("input_size", "min_size", "from_torchvision"):
        assert fact not in stated and fact not in accepted


class _TinyNet(nn.Module):
    input_size = (1, 20, 20)
    min_input_size = 12

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)


def test_a_new_network_brings_its_own_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model(family="Tiny", paper="none")
    def tiny_net(num_classes: int = 2, in_channels: int = 1) -> _TinyNet:
        return _TinyNet()

    entry = get_model_entry("tiny_net")
    assert (entry.input_size, entry.min_size) == ((1, 20, 20), 12)
    assert "tiny_net" in cnnzoo.list_models("tiny*", task="classification")
    assert "tiny_net" not in cnnzoo.list_models(task="segmentation")
    with pytest.raises(ValueError, match="'tiny_net' is already registered"):
        register_model(family="Tiny", paper="again")(tiny_net)


def test_an_unknown_task_is_refused() -> None:
    with pytest.raises(CnnzooError, match="task must be one of classification, segmentation"):
        register_model(family="Tiny", paper="none", task="detection")


def test_the_size_check_names_the_minimum() -> None:
    check_input_size("lenet5", 32, (1, 32, 32))  # exactly the minimum is fine
    with pytest.raises(CnnzooError) as refused:
        check_input_size("lenet5", 32, (1, 16, 40))
    assert str(refused.value) == (
        "lenet5 needs inputs of at least 32x32 pixels, got 16x40; resize the images "
        "(for example --input 1,32,32, or --image-size 32 to train)"
    )


def test_every_size_check_gives_the_same_message() -> None:
    expected = "needs inputs of at least 63x63 pixels, got 40x40"
    with pytest.raises(CnnzooError, match=expected):
        resolve_input("alexnet", (3, 40, 40))
    with pytest.raises(CnnzooError, match=expected):
        cnnzoo.create_model("alexnet", num_classes=2)(torch.zeros(1, 3, 40, 40))


def test_a_network_built_without_a_class_count_takes_its_tasks_default() -> None:
    from cnnzoo.tasks import CLASSIFICATION, SEGMENTATION

    logits = cnnzoo.create_model("lenet5").eval()(torch.zeros(1, 3, 32, 32))
    assert logits.shape[1] == CLASSIFICATION.default_num_classes
    scores = cnnzoo.create_model("fcn32s").eval()(torch.zeros(1, 3, 64, 64))
    assert scores.shape[1] == SEGMENTATION.default_num_classes
