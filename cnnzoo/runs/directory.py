"""The run directory: where a run writes, when it may start again, and what it resumes.

A run directory ends up holding ``config.yaml``, ``best.pt`` (best validation
score), ``last.pt`` (resumable), ``log.csv``, ``curves.png``,
``confusion.png`` and ``metrics.json`` (the best checkpoint on the test
split), ``grad_norms.csv``/``.png`` with ``--log-grad-norms``, and
``skipped_images.txt`` when ``--skip-bad-images`` left files out.

The policy, written once here and followed by the trainer and the command
line alike:

* a directory that already holds a run is never overwritten by accident:
  ``resume`` continues it, ``force`` removes exactly :data:`RUN_FILES` first;
* a resumed run keeps its recipe: only :data:`~cnnzoo.runs.config.RESUMABLE_FIELDS`
  (how long, where, how loudly) may differ from the saved ``config.yaml``;
* ``--resume`` without ``--out`` finds the run where a new one would go;
* a worker that torchrun started again after a failure (``--max-restarts``)
  continues its own run from ``last.pt`` by itself, since torchrun repeats
  the command line that started the run (:func:`open_after_restart`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cnnzoo.data.bad_images import BadImage
from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.config import (
    FIELD_NAMES,
    RESUMABLE_FIELDS,
    TrainConfig,
    config_from_dict,
    load_config_file,
)

SKIPPED_IMAGES = "skipped_images.txt"  # one "PATH<tab>REASON" line per file left out
# Files a run writes; --force removes exactly these before starting again.
RUN_FILES = (
    "config.yaml",
    "best.pt",
    "best-ema.pt",
    "last.pt",
    "log.csv",
    "curves.png",
    "confusion.png",
    "metrics.json",
    "grad_norms.csv",
    "grad_norms.png",
    SKIPPED_IMAGES,
)


def default_run_dir(config: TrainConfig) -> Path:
    """runs/MODEL-DATA, with the data name made safe for a directory name."""
    data = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.data.replace(":", "-")).strip("-")
    return Path("runs") / f"{config.model}-{data}"


def run_dir_of(config: TrainConfig) -> Path:
    """Where ``config`` writes: its ``out``, else :func:`default_run_dir`."""
    return Path(config.out) if config.out else default_run_dir(config)


@contextmanager
def scratch_run(config: TrainConfig, purpose: str) -> Iterator[TrainConfig]:
    """``config`` run in a temporary directory, quietly and without plots; removed afterwards.

    For callers that want a run's numbers and trained network, not its files
    (the survey experiments, the epoch benchmark). ``purpose`` names the
    directory (``cnnzoo-PURPOSE-...``), so a leftover one says what made it.
    """
    with tempfile.TemporaryDirectory(prefix=f"cnnzoo-{purpose}-") as run_dir:
        yield dataclasses.replace(config, out=run_dir, plots=False, quiet=True)


def prepare_run_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Create the run directory; refuse to overwrite a finished or running one."""
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not resume and not force:
        raise CnnzooError(
            f"run directory {run_dir} already holds a run ({', '.join(existing)}); "
            "pass --resume to continue it, --force to start it again, or --out DIR"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CnnzooError(
            f"cannot write to the run directory {run_dir}: {error.strerror or error}; "
            "choose another --out"
        ) from None
    if force and not resume:
        for name in existing:
            (run_dir / name).unlink()


def record_skipped_images(run_dir: Path, skipped: list[BadImage]) -> int:
    """Add ``skipped`` to the run's ``skipped_images.txt``; the number of files it lists.

    Earlier sessions of a resumed run listed theirs there already: a file is
    listed once however often an epoch met it.
    """
    path = run_dir / SKIPPED_IMAGES
    listed = (
        dict(line.split("\t", 1) for line in path.read_text().splitlines())
        if path.is_file()
        else {}
    )
    for image in skipped:
        listed.setdefault(image.path, image.reason)
    if listed:
        path.write_text("".join(f"{name}\t{listed[name]}\n" for name in sorted(listed)))
    return len(listed)


def restarted_by_torchrun() -> bool:
    """True in a worker that torchrun started again after a worker of its run failed.

    torchrun counts its restarts in ``TORCHELASTIC_RESTART_COUNT`` (0 on the
    first attempt); without torchrun the variable is absent.
    """
    return os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") not in ("", "0")


def open_after_restart(run_dir: Path, requested: TrainConfig, *, force: bool) -> tuple[bool, bool]:
    """(resume, force) with which a restarted worker that was not asked to resume opens ``run_dir``.

    torchrun restarts every worker of a run when one of them fails, with the
    command line of the first attempt, which did not ask to resume. What that
    attempt left in ``run_dir`` is then taken up, but only when it is this
    recipe's unfinished run (any other run stays refused, as it was refused
    the first time):

    * ``last.pt`` without ``metrics.json``: resume from the last finished epoch;
    * only ``config.yaml`` (the worker failed before its first epoch ended):
      start again, since there is nothing yet to lose.

    A first ``--force`` already cleared the directory, so a restart never
    clears the progress made since.
    """
    present = {name for name in RUN_FILES if (run_dir / name).exists()}
    if "metrics.json" in present or "config.yaml" not in present:
        return False, force
    saved = config_from_dict(load_config_file(run_dir / "config.yaml"))
    if recipe_changes(saved, requested):
        return False, force
    if "last.pt" in present:
        return True, force
    return False, present == {"config.yaml"} or force


def saved_recipe(values: dict[str, Any]) -> dict[str, Any]:
    """The ``config.yaml`` of the run that ``values`` (fields given for a resume) points at.

    ``out`` names the run; without it, the run of ``values``' model and data
    in its default place.
    """
    if "out" not in values:
        if "model" not in values:
            raise CnnzooError("--resume needs the run directory: pass --out RUN_DIR")
        values = {**values, "out": str(default_run_dir(config_from_dict(values)))}
    recipe = Path(values["out"]) / "config.yaml"
    if not recipe.is_file():
        raise CnnzooError(f"nothing to resume: {recipe} does not exist; check --out")
    return {**load_config_file(recipe), "out": values["out"]}


def checkpoint_path(location: str | Path) -> Path:
    """The checkpoint at ``location``: a run directory's best.pt (else last.pt), or the file."""
    path = Path(location)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise CnnzooError(f"{path} holds no best.pt or last.pt; is it a run directory?")
    if not path.is_file():
        raise CnnzooError(f"{path} does not exist; give a run directory or a checkpoint file")
    return path


def read_last_checkpoint(run_dir: Path) -> Checkpoint:
    """The resumable checkpoint ``run_dir/last.pt``, with its training state."""
    path = run_dir / "last.pt"
    if not path.is_file():
        raise CnnzooError(f"nothing to resume: {run_dir} holds no last.pt; check --out")
    checkpoint = Checkpoint.load(path)
    if checkpoint.training is None:
        raise CnnzooError(f"{path} holds no training state to resume from; start a new run")
    return checkpoint


def resumed_config(state: Checkpoint, requested: TrainConfig, run_dir: Path) -> TrainConfig:
    """``requested``, after checking it differs from the checkpoint's only where it may."""
    saved = state.recipe
    if requested.model != saved.model:
        raise CnnzooError(
            f"the checkpoint in {run_dir} is of {saved.model!r}, not {requested.model!r}; "
            "resume with the same model or choose another --out"
        )
    changed = recipe_changes(saved, requested)
    if changed:
        raise CnnzooError(
            f"a resumed run keeps its recipe; {', '.join(changed)} differ from {run_dir}. "
            f"Only {', '.join(RESUMABLE_FIELDS)} may change; start a new run with --out"
        )
    return requested


def recipe_changes(saved: TrainConfig, requested: TrainConfig) -> list[str]:
    """The fields a resumed run may not change in which ``requested`` differs from ``saved``."""
    return [
        name
        for name in FIELD_NAMES
        if name not in RESUMABLE_FIELDS and getattr(requested, name) != getattr(saved, name)
    ]


def best_weights(path: Path, *, registered: bool = True) -> Checkpoint | None:
    """The best checkpoint at ``path`` (``best.pt`` or ``best-ema.pt``), if there is one.

    ``registered=False`` reads the checkpoint of a network no registry entry
    describes (an experiment's own module), which cannot be checked against
    the registry; the same run wrote it moments before.
    """
    if not path.is_file():
        return None
    return Checkpoint.load(path, registered=registered)
