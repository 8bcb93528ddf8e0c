"""cnnzoo train MODEL --data NAME: train a network and write a run directory.

The run directory holds config.yaml, best.pt, last.pt, log.csv, curves.png,
confusion.png and metrics.json. Each flag is a field of the training
configuration (runs/config.py TrainConfig); --config FILE.yaml sets the
same fields and flags given explicitly override it. The last line printed is
the run's metrics as JSON. ``--dry-run`` prints the run's resolved plan
(:mod:`cnnzoo.runs.plan`) instead, and trains and writes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from cnnzoo.cli.paths import writable_output
from cnnzoo.data import list_datasets
from cnnzoo.runs.config import TrainConfig, config_from_dict, load_config_file
from cnnzoo.runs.directory import run_dir_of, saved_recipe

# Where each group of flags in `--help` begins: the first field of each section of TrainConfig.
GROUP_STARTS = {
    "model": "what to train on what",
    "epochs": "how long",
    "optimizer": "optimiser",
    "schedule": "learning-rate schedule",
    "loss": "loss",
    "augment": "data handling",
    "random_resized_crop": "recipe (post-2017)",
    "precision": "numerics and reproducibility",
    "out": "output",
}


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers such as 32000,48000, got {text!r}"
        ) from None


def parse_model_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--model-option``, the value read as YAML (``false``, ``2``, ``a``)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE such as aux_logits=false, got {text!r}"
        )
    return key, yaml.safe_load(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.argument_default = argparse.SUPPRESS  # only flags given explicitly override the YAML
    parser.add_argument(
        "--config", dest="config_file", type=Path, help="YAML recipe setting the same fields"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from last.pt"
    )
    parser.add_argument(
        "--force", action="store_true", help="start again in an existing run directory"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved plan (input, data, steps, recipe, weights, run directory) "
        "and stop: nothing is trained or written",
    )
    group = parser
    for config_field in dataclasses.fields(TrainConfig):
        if config_field.name in GROUP_STARTS:
            group = parser.add_argument_group(GROUP_STARTS[config_field.name])
        _add_field_option(group, config_field)
    parser.set_defaults(resume=False, force=False, dry_run=False)


def _add_field_option(group: Any, config_field: dataclasses.Field) -> None:
    """The flag of one TrainConfig field: its type, choices, help text and default."""
    kind = typing.get_type_hints(TrainConfig)[config_field.name]
    if isinstance(kind, types.UnionType):  # `int | None`: the flag takes an int
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    base = typing.get_origin(kind) or kind
    help_text = _help(config_field)
    flag = "--" + config_field.name.replace("_", "-")
    if config_field.name == "model":  # `cnnzoo train resnet20`, as every other verb names it
        group.add_argument("model", nargs="?", help=help_text)
    elif base is dict:  # one repeatable KEY=VALUE flag per constructor option
        group.add_argument(
            "--model-option", dest="model_options", type=parse_model_option, action="append",
            metavar="KEY=VALUE", help=help_text,
        )  # fmt: skip
    elif base is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
    elif base is list:
        group.add_argument(flag, type=_int_list, metavar="N,N,...", help=help_text)
    else:
        choices = config_field.metadata["choices"]
        group.add_argument(flag, type=base, choices=choices, help=help_text)


def _help(config_field: dataclasses.Field) -> str:
    """The field's help text with its default, escaped for argparse's %-formatting."""
    text = config_field.metadata["help"]
    if config_field.name == "data":
        text += f"; registered: {', '.join(entry.name for entry in list_datasets())}"
    default = config_field.default
    if config_field.default_factory is not dataclasses.MISSING:
        default = config_field.default_factory()
    if default not in (None, [], {}):
        shown = str(default).lower() if isinstance(default, bool) else default
        text += f" (default: {shown})"
    return text.replace("%", "%%")


def build_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the YAML file, then the flags given; on --resume, the run's own recipe."""
    given = {k.replace("-", "_"): v for k, v in vars(args).items()}
    flags = {k: v for k, v in given.items() if k in TrainConfig.__dataclass_fields__}
    if "model_options" in flags:
        flags["model_options"] = dict(flags["model_options"])
    values: dict[str, Any] = {}
    if "config_file" in given:
        values.update(load_config_file(given["config_file"]))
    values.update(flags)
    if given.get("resume"):
        values = {**saved_recipe(values), **values}
    return config_from_dict(values)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.train.distributed import context_from_environment
    from cnnzoo.train.interruptions import exit_status
    from cnnzoo.train.trainer import train

    config = build_config(args)
    if args.dry_run:
        print(dry_run(config, resume=args.resume, world_size=context_from_environment().world_size))
        return 0
    main = context_from_environment().is_main  # under torchrun, one process reports
    if main:  # before the data loads; runs/directory.py owns what may be replaced
        writable_output(
            run_dir_of(config), force=args.force, directory=True, label="the run directory"
        )
    result = train(config, resume=args.resume, force=args.force)
    if not result.completed:
        if main:
            print(f"stopped early; continue with: cnnzoo train --resume --out {result.run_dir}")
        # The shell's status for a run ended by a signal: 130 for SIGINT, 143 for SIGTERM.
        return exit_status(result.stop_signal) if result.stop_signal else 1
    if main:
        print(f"run directory: {result.run_dir}")
        print(json.dumps(result.metrics))
    return 0


def dry_run(config: TrainConfig, *, resume: bool = False, world_size: int = 1) -> str:
    """The plan a run of ``config`` would carry out, as text; the data is opened, nothing written.

    The same decisions as the trainer's (:mod:`cnnzoo.runs.plan`): a resumed
    run's recipe is checked against its last.pt, and pretrained weights set
    the input without being read.
    """
    from cnnzoo.runs import plan
    from cnnzoo.runs.directory import read_last_checkpoint

    run = plan.request(config, resume=resume, world_size=world_size)
    if resume:
        run = run.resuming(read_last_checkpoint(run.run_dir))
    resolved, _ = plan.resolve(run, plan.open_data(run))
    return f"{resolved.describe()}\ndry run: nothing trained, {resolved.run_dir} not written"
