"""Configuration: YAML recipes set the dataclass fields, mistakes are clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.config import (
    RESUMABLE_FIELDS,
    TrainConfig,
    config_from_dict,
    load_config_file,
)

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    with pytest.raises(CnnzooError, match="'weight_decy' \\(did you mean 'weight_decay'\\?\\)"):
        config_from_dict({"weight_decy": 1e-4})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": "fast"}, "lr must be float"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"milestones": [48000, 32000]}, "milestones must be increasing"),
        ({"batch_size": True}, "batch_size must be int"),
        ({"val_fraction": -0.1}, "val_fraction must be in"),
    ],
)
def test_bad_values_are_clear_errors(values: dict, message: str) -> None:
    with pytest.raises(CnnzooError, match=message):
        config_from_dict(values)


def test_integers_are_accepted_for_float_fields() -> None:
    config = config_from_dict({"lr": 1, "milestones": [32000, 48000]})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.milestones == [32000, 48000]


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("- lr\n- 0.1\n")
    with pytest.raises(CnnzooError, match="must hold a mapping"):
        load_config_file(path)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_recipes_are_valid(path: Path) -> None:
    config = config_from_dict(load_config_file(path))
    assert isinstance(config, TrainConfig)


def test_resnet_recipe_is_he_et_al_cifar_schedule() -> None:
    config = config_from_dict(load_config_file(CONFIGS[0].parent / "resnet_cifar10.yaml"))
    assert (config.optimizer, config.lr, config.momentum, config.weight_decay) == (
        "sgd", 0.1, 0.9, 1e-4
    )  # fmt: skip
    assert (config.batch_size, config.iterations) == (128, 64_000)
    assert (config.milestones, config.step_unit) == ([32_000, 48_000], "iteration")


def test_every_field_states_its_help_and_resumable_fields_come_from_it() -> None:
    fields = dataclasses.fields(TrainConfig)
    assert all(f.metadata["help"].strip() for f in fields)
    assert set(RESUMABLE_FIELDS) == {f.name for f in fields if f.metadata["resumable"]}
    assert {"epochs", "out", "quiet"} <= set(RESUMABLE_FIELDS)
    assert not {"model", "lr", "seed", "data"} & set(RESUMABLE_FIELDS)


def test_choices_in_the_field_metadata_are_enforced() -> None:
    with pytest.raises(CnnzooError, match="schedule must be one of step, cosine, poly, none"):
        config_from_dict({"schedule": "linear"})


def test_container_defaults_are_never_shared_between_configs() -> None:
    first, second = TrainConfig(), TrainConfig()
    first.milestones.append(3)
    first.model_options["width"] = 8
    assert second.milestones == [] and second.model_options == {}
