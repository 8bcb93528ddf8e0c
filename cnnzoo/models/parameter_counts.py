"""Each registered network's parameter count, recorded so that ``cnnzoo list`` builds none.

Counting a network's parameters means building it: on the meta device that
costs no memory, but running every constructor of the zoo still takes
seconds. The counts at the defaults ``cnnzoo list`` shows (the task's default
number of classes, 3 input channels) are therefore recorded in
``parameter_counts.json`` beside this file, which ships with the package.
``tests/models/test_parameter_counts.py`` checks them against the built
networks; after adding or changing a network, record them again with::

    python -m cnnzoo.models.parameter_counts --write
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

import torch

from cnnzoo.models.registry import create_model, get_model_entry, list_models
from cnnzoo.tasks import get_task

COUNTS_FILE = Path(__file__).with_name("parameter_counts.json")
WRITE_COMMAND = "python -m cnnzoo.models.parameter_counts --write"
IN_CHANNELS = 3

# One network's record: {"num_classes": ..., "in_channels": ..., "parameters": ...}.
Record = dict[str, int]


def default_shape(name: str) -> Record:
    """The shape a count is recorded at: the task's default classes and 3 input channels."""
    num_classes = get_task(get_model_entry(name).task).default_num_classes
    return {"num_classes": num_classes, "in_channels": IN_CHANNELS}


def count_parameters(name: str) -> int:
    """Build ``name`` at its default shape on the meta device and count its parameters."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = create_model(name, **default_shape(name))
    return sum(p.numel() for p in model.parameters())


def measure_counts(names: Iterable[str] | None = None) -> dict[str, Record]:
    """The records of ``names`` (every registered network by default), each network built."""
    names = list_models() if names is None else names
    return {name: {**default_shape(name), "parameters": count_parameters(name)} for name in names}


@cache
def recorded_counts(path: Path = COUNTS_FILE) -> dict[str, Record]:
    """The records written by :func:`write_counts`, read once per process."""
    return json.loads(path.read_text())


def parameter_count(name: str) -> int:
    """``name``'s parameters at its default shape: recorded, or counted if no record fits.

    A network registered outside the zoo (by a user's ``register_model``) has
    no record and is built on the meta device, as is one whose record was
    written at another shape.
    """
    record = recorded_counts().get(name)
    if record is not None and all(record.get(k) == v for k, v in default_shape(name).items()):
        return record["parameters"]
    return count_parameters(name)


def differences(recorded: Mapping[str, Record], measured: Mapping[str, Record]) -> list[str]:
    """One line for each network whose record is missing, wrong or of no registered network."""
    lines = []
    for name, record in measured.items():
        if name not in recorded:
            lines.append(f"{name}: no recorded parameter count")
        elif dict(recorded[name]) != record:
            lines.append(f"{name}: recorded {dict(recorded[name])}, built {record}")
    lines += [f"{name}: recorded but not registered" for name in recorded if name not in measured]
    return lines


def write_counts(counts: Mapping[str, Record], path: Path = COUNTS_FILE) -> None:
    """Write ``counts`` as JSON, one network a line, in registration order."""
    lines = [f"  {json.dumps(name)}: {json.dumps(record)}" for name, record in counts.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Check the recorded counts against the built networks; ``--write`` records them anew."""
    parser = argparse.ArgumentParser(
        prog="python -m cnnzoo.models.parameter_counts", description=main.__doc__
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite {COUNTS_FILE.name}")
    args = parser.parse_args(argv)
    measured = measure_counts()
    if args.write:
        write_counts(measured)
        print(f"recorded the parameter counts of {len(measured)} networks in {COUNTS_FILE}")
        return 0
    stale = differences(recorded_counts(), measured)
    for line in stale:
        print(line)
    if stale:
        print(f"run `{WRITE_COMMAND}` to record them")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
