"""`cnnzoo train`'s flags come from TrainConfig: one per field, with its help text and default."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from cnnzoo.cli import build_parser, main
from cnnzoo.cli.train import build_config
from cnnzoo.runs.config import TrainConfig


def _train_parser() -> argparse.ArgumentParser:
    (subparsers,) = (
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return subparsers.choices["train"]


def test_every_config_field_has_a_flag_with_its_help_text() -> None:
    actions = {action.dest: action for action in _train_parser()._actions}
    for config_field in dataclasses.fields(TrainConfig):
        action = actions.get(config_field.name)
        assert action is not None, f"{config_field.name} has no flag"
        assert config_field.metadata["help"] in action.help
    assert "--poly-power" in actions["poly_power"].option_strings
    assert actions["model_options"].option_strings == ["--model-option"]


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "passes over the training split (default: 10)" in text
    assert "--poly-power POLY_POWER poly schedule exponent" in text
    assert "(default: 0.9)" in text and "(default: cosine)" in text
    assert "--no-plots" in text and "--nesterov, --no-nesterov" in text


def _config(argv: list[str]) -> TrainConfig:
    return build_config(build_parser().parse_args(["train", *argv]))


def test_flags_set_their_fields_and_unset_ones_keep_the_defaults() -> None:
    config = _config(
        ["resnet20", "--poly-power", "0.5", "--schedule", "poly", "--no-plots", "--nesterov",
         "--milestones", "2,4", "--model-option", "width=8", "--model-option", "aux=false",
         "--channels-last", "--data-dir", "/tmp/d"]
    )  # fmt: skip
    assert (config.model, config.poly_power, config.schedule) == ("resnet20", 0.5, "poly")
    assert config.plots is False and config.nesterov is True and config.channels_last is True
    assert config.milestones == [2, 4] and config.model_options == {"width": 8, "aux": False}
    assert config.data_dir == "/tmp/d"
    assert (config.lr, config.epochs, config.quiet) == (0.05, 10, False)
    assert _config([]) == TrainConfig()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizer", "rmsprop"], "invalid choice"),
        (["--milestones", "a,b"], "expected numbers"),
        (["--model-option", "width"], "expected KEY=VALUE"),
        (["--epochs", "many"], "invalid int value"),
    ],
)
def test_bad_flag_values_are_refused_by_the_parser(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        main(["train", *argv])
    assert message in capsys.readouterr().err


# Every flag `cnnzoo train` took before its flags were generated, as recipes and scripts use them.
EARLIER_FLAGS = (
    "--data --data-dir --download --config --out --resume --force --epochs --iterations "
    "--batch-size --eval-batch-size --optimizer --lr --momentum --nesterov --weight-decay "
    "--grad-clip --schedule --milestones --gamma --step-unit --warmup --min-lr --loss "
    "--label-smoothing --aux-weight --class-weights --augment --val-fraction --image-size "
    "--in-channels --model-option --workers --precision --channels-last --no-channels-last "
    "--seed --device --threads --sync-bn --tensorboard --log-grad-norms --quiet --no-plots"
)


def test_every_earlier_flag_is_still_there() -> None:
    flags = {flag for action in _train_parser()._actions for flag in action.option_strings}
    assert set(EARLIER_FLAGS.split()) <= flags


def test_in_channels_takes_gray_or_color_only(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--in-channels", "2"])
    assert "invalid choice: 2" in capsys.readouterr().err
