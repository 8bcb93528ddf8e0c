"""``cnnzoo train MODEL --data NAME``: train a network and write a run directory.

Flags map onto :class:`~cnnzoo.engine.config.TrainConfig`; ``--config FILE.yaml``
sets the same fields and flags given explicitly override it. The last line
printed is the run's metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from cnnzoo.data import list_datasets
from cnnzoo.engine.config import (
    AUGMENTATIONS,
    CLASS_WEIGHTS,
    DEVICES,
    LOSSES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    STEP_UNITS,
    TrainConfig,
    config_from_dict,
    load_config_file,
)
from cnnzoo.engine.run_dir import saved_recipe


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers such as 32000,48000, got {text!r}"
        ) from None


def _model_option(text: str) -> tuple[str, Any]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE such as aux_logits=false, got {text!r}"
        )
    return key, yaml.safe_load(value)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data_names = ", ".join(entry.name for entry in list_datasets())
    parser = subparsers.add_parser(
        "train",
        help="train a network and write a run directory",
        description="Train a network. Run directory: config.yaml, best.pt, last.pt, log.csv, "
        "curves.png, confusion.png, metrics.json.",
        argument_default=argparse.SUPPRESS,  # only flags given explicitly override the YAML
    )
    add = parser.add_argument
    add("model", nargs="?", help="a model from `cnnzoo list` (default: lenet5)")
    add("--data", help=f"data set: {data_names} (folder:PATH for your own images)")
    add("--data-dir", help="where downloadable data sets are stored")
    add("--download", action="store_true", help="download the data set if it is missing")
    add("--config", dest="config_file", type=Path, help="YAML recipe setting the same fields")
    add("--out", help="run directory (default runs/MODEL-DATA)")
    add("--resume", action="store_true", help="continue the run in --out from last.pt")
    add("--force", action="store_true", help="start again in an existing run directory")

    group = parser.add_argument_group("schedule")
    group.add_argument("--epochs", type=int)
    group.add_argument("--iterations", type=int, help="total steps; overrides --epochs")
    group.add_argument("--batch-size", type=int)
    group.add_argument("--eval-batch-size", type=int)
    group.add_argument("--optimizer", choices=OPTIMIZERS)
    group.add_argument("--lr", type=float, help="peak learning rate")
    group.add_argument("--momentum", type=float)
    group.add_argument("--nesterov", action="store_true")
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    group.add_argument("--schedule", choices=SCHEDULES)
    group.add_argument("--milestones", type=_int_list, help="step schedule, e.g. 32000,48000")
    group.add_argument("--gamma", type=float, help="step schedule factor")
    group.add_argument("--step-unit", choices=STEP_UNITS, help="unit of milestones and warm-up")
    group.add_argument("--warmup", type=int, help="linear warm-up length")
    group.add_argument("--min-lr", type=float)

    group = parser.add_argument_group("loss and data")
    group.add_argument("--loss", choices=LOSSES)
    group.add_argument("--label-smoothing", type=float)
    group.add_argument("--aux-weight", type=float, help="weight of auxiliary-head losses")
    group.add_argument("--class-weights", choices=CLASS_WEIGHTS)
    group.add_argument("--augment", choices=AUGMENTATIONS)
    group.add_argument(
        "--val-fraction",
        type=float,
        help="share of the training images held out to pick best.pt (default 0.1)",
    )
    group.add_argument("--image-size", type=int, help="square input side (default: the paper's)")
    group.add_argument("--in-channels", type=int, choices=(1, 3))
    group.add_argument(
        "--model-option",
        dest="model_options",
        type=_model_option,
        action="append",
        help="constructor option KEY=VALUE, e.g. aux_logits=false (repeatable)",
    )
    group.add_argument("--workers", type=int, help="data-loading processes (files on disk)")

    group = parser.add_argument_group("run")
    group.add_argument("--precision", choices=PRECISIONS)
    group.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="NHWC memory layout (default: on for CPU, off for GPU)",
    )
    group.add_argument("--seed", type=int)
    group.add_argument("--device", choices=DEVICES)
    group.add_argument("--threads", type=int, help="CPU threads (default: one per core)")
    group.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun: batch-norm statistics over all processes (segmentation)",
    )
    group.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    group.add_argument(
        "--log-grad-norms", type=int, metavar="N", help="record gradient norms every N steps"
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    group.add_argument(
        "--no-plots", dest="plots", action="store_false", help="skip curves.png, confusion.png"
    )
    parser.set_defaults(run=run)


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
    from cnnzoo.engine.distributed import context_from_environment
    from cnnzoo.engine.safety import exit_status
    from cnnzoo.engine.trainer import train

    config = build_config(args)
    result = train(
        config, resume=getattr(args, "resume", False), force=getattr(args, "force", False)
    )
    main = context_from_environment().is_main  # under torchrun, one process reports
    if not result.completed:
        if main:
            print(f"stopped early; continue with: cnnzoo train --resume --out {result.run_dir}")
        # The shell's status for a run ended by a signal: 130 for SIGINT, 143 for SIGTERM.
        return exit_status(result.stop_signal) if result.stop_signal else 1
    if main:
        print(f"run directory: {result.run_dir}")
        print(json.dumps(result.metrics))
    return 0
