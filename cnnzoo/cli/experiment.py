"""cnnzoo experiment list|run: the survey's claims as experiments anyone can rerun."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnzoo.cli import add_quiet_flag
from cnnzoo.cli.paths import add_force_flag, writable_output
from cnnzoo.experiments import ExperimentData, get_experiment, list_experiments, run_experiment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="list the experiments and the claims they test")
    running = actions.add_parser("run", help="run one experiment and write its report")
    running.add_argument("name", help="experiment name from `cnnzoo experiment list`")
    running.add_argument("--quick", action="store_true", help="reduced run, seconds not minutes")
    running.add_argument("--out", type=Path, default=None, help="output directory")
    running.add_argument("--seed", type=int, default=0)
    running.add_argument(
        "--data",
        metavar="SOURCE",
        default=None,
        help="train on this data instead of the experiment's own, as `cnnzoo train --data` "
        "takes it (cifar10, folder:PATH, digits, ...): its own channels, the networks' paper "
        "size",
    )
    running.add_argument(
        "--train-fraction",
        type=float,
        default=None,
        metavar="F",
        help="train on a seeded, class-stratified share of the training split (0 < F <= 1)",
    )
    running.add_argument(
        "--epochs", type=int, default=None, help="epochs of the full run (unset: the experiment's)"
    )
    add_force_flag(running)
    add_quiet_flag(running)


def run(args: argparse.Namespace) -> int:
    return run_list(args) if args.action == "list" else run_one(args)


def run_list(args: argparse.Namespace) -> int:
    experiments = list_experiments()
    width = max(len(e.name) for e in experiments)
    for experiment in experiments:
        print(f"{experiment.name.ljust(width)}  {experiment.claim}")
    return 0


def run_one(args: argparse.Namespace) -> int:
    experiment = get_experiment(args.name)  # an unknown name is refused before anything is written
    chosen = (args.data, args.train_fraction, args.epochs)
    data = ExperimentData(*chosen) if any(value is not None for value in chosen) else None
    experiment.check_data(data)
    out_dir = args.out or Path("runs") / "experiments" / args.name
    writable_output(
        out_dir, force=args.force, directory=True, contents=["report.md", "results.json"]
    )
    run = run_experiment(args.name, out_dir, quick=args.quick, seed=args.seed, data=data)
    failed = [c for c in run.checks if not c.passed]
    for finding in run.findings:
        print(f"{'reproduced' if finding.passed else 'not reproduced'}  {finding.claim}")
    for check in run.checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.claim}")
    print(f"report: {out_dir / 'report.md'}")
    return 1 if failed else 0
