import pytest
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.registry import register_model


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
        cnnzoo.create_model("lenet5", colour="blue")
