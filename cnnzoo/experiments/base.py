"""The survey's claims as experiments: a table of experiments and the report they write.

Each experiment is a function registered with :func:`register_experiment` that
receives an :class:`ExperimentRun` (where to write, how long it may take, and
the data the user chose, if any: :class:`ExperimentData`) and fills it with
results, figures, prose, *checks* and *findings*. A check is a statement
the numbers must satisfy whatever the training budget (for example "two
stacked 3x3 convolutions see as far as one 5x5"); a failed check means
something is broken. A finding is the survey's empirical claim as measured
here (for example "the deep plain network trains worse"): it may not reproduce
at CPU scale, and the report says so instead of hiding it.
:func:`run_experiment` writes ``report.md`` and ``results.json``.

A full run trains for minutes to hours, so an experiment loops over its runs
through :meth:`ExperimentRun.progress`, which shows a bar on a terminal; its
figures are bare :class:`matplotlib.figure.Figure` objects saved by
:meth:`ExperimentRun.save_figure`, which leaves the caller's plotting backend alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cnnzoo.analysis.figures import save_figure
from cnnzoo.data import list_datasets, source_name
from cnnzoo.errors import CnnzooError
from cnnzoo.progress import progress

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Item = TypeVar("Item")


@dataclass
class Check:
    """One statement the experiment's numbers must bear out."""

    claim: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class ExperimentData:
    """The data a user runs an experiment on instead of its own (``--data``, ...).

    ``source`` is a ``--data`` spec as ``cnnzoo train`` takes it (``cifar10``,
    ``folder:PATH``); ``train_fraction`` trains on a seeded, class-stratified share of
    its training split, for a budget; ``epochs`` replaces the experiment's full-run
    epochs. None: the experiment's own choice.
    """

    source: str | None = None
    train_fraction: float | None = None
    epochs: int | None = None

    def __post_init__(self) -> None:
        if self.source is not None:
            _check_source(self.source)
        if self.train_fraction is not None and not 0.0 < self.train_fraction <= 1.0:
            raise CnnzooError(f"--train-fraction must be in (0, 1], got {self.train_fraction}")
        if self.epochs is not None and self.epochs < 1:
            raise CnnzooError(f"--epochs must be at least 1, got {self.epochs}")

    def describe(self) -> str:
        """The choice in words for the report: ``"data folder:PATH, train fraction 0.2"``."""
        parts = [
            f"{label} {value}"
            for label, value in (
                ("data", self.source),
                ("train fraction", self.train_fraction),
                ("epochs", self.epochs),
            )
            if value is not None
        ]
        return ", ".join(parts)

    def flags(self) -> str:
        """The command-line flags that make this choice: ``" --data cifar10 --epochs 30"``."""
        return "".join(
            f" {flag} {value}"
            for flag, value in (
                ("--data", self.source),
                ("--train-fraction", self.train_fraction),
                ("--epochs", self.epochs),
            )
            if value is not None
        )


def _check_source(source: str) -> None:
    """Refuse a ``--data`` spec no experiment can train on, before anything is written."""
    name = source_name(source)
    entries = {entry.name: entry for entry in list_datasets()}
    if name not in entries:
        known = ", ".join(sorted(entries))
        raise CnnzooError(f"unknown data set {name!r} for --data; known data sets: {known}")
    if entries[name].task != "classification":
        names = ", ".join(entry.name for entry in list_datasets("classification"))
        raise CnnzooError(
            f"{name!r} is a {entries[name].task} data set; the experiments train classifiers "
            f"on a classification data set: {names}"
        )
    if name == "folder" and not Path(source.partition(":")[2]).expanduser().is_dir():
        raise CnnzooError(f"--data {source}: no such folder of class folders")


@dataclass
class ExperimentRun:
    """What an experiment receives, and what it records while it runs."""

    out_dir: Path  # where report.md, results.json and figures go
    quick: bool  # a reduced run (seconds) instead of the full one (minutes)
    seed: int = 0
    name: str = ""  # the experiment's registered name, shown on its progress bars
    data: ExperimentData | None = None  # the user's data and budget; None: the experiment's
    results: dict[str, Any] = field(default_factory=dict)  # numbers, saved to results.json
    sections: list[str] = field(default_factory=list)  # markdown paragraphs of the report
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file name, caption)
    checks: list[Check] = field(default_factory=list)
    findings: list[Check] = field(default_factory=list)

    @property
    def mode(self) -> str:
        """``"quick"`` or ``"full"``: the key of the per-mode budgets experiments define."""
        return "quick" if self.quick else "full"

    @property
    def data_source(self) -> str | None:
        """The ``--data`` spec the user chose, or None for the experiment's own data."""
        return self.data.source if self.data is not None else None

    def recipe(self, default: Mapping[str, Any]) -> dict[str, Any]:
        """``default`` (TrainConfig fields) with the user's data choice laid over it.

        A chosen source brings its own channels and the network's paper size
        (``image_size`` and ``in_channels`` None: CIFAR-10 trains at 32x32 colour);
        ``train_fraction`` and ``epochs`` are set as given. Without a choice the
        recipe is ``default`` itself.
        """
        recipe = dict(default)
        if self.data is None:
            return recipe
        if self.data.source is not None:
            recipe.update(data=self.data.source, image_size=None, in_channels=None)
        if self.data.train_fraction is not None:
            recipe["train_fraction"] = self.data.train_fraction
        if self.data.epochs is not None:
            recipe["epochs"] = self.data.epochs
        return recipe

    def write(self, markdown: str) -> None:
        """Add a paragraph (markdown) to the report."""
        self.sections.append(markdown.strip())

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        """Add a markdown table to the report."""
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
        self.sections.append("\n".join(lines))

    def figure(self, name: str, caption: str) -> Path:
        """Reserve a figure file in the output directory; the caller saves the plot there."""
        self.figures.append((name, caption))
        self.sections.append(f"![{caption}]({name})\n\n*{caption}*")
        return self.out_dir / name

    def save_figure(self, figure: Figure, name: str, caption: str, **options: Any) -> Path:
        """Save ``figure`` as ``name`` in the report (90 dpi unless ``options`` say otherwise)."""
        return save_figure(figure, self.figure(name, caption), **{"dpi": 90, **options})

    def progress(self, items: Iterable[Item], description: str) -> Iterator[Item]:
        """Iterate over the experiment's runs with a bar (on a terminal only): a full run
        trains for minutes to hours, and the bar says how far it has come."""
        label = f"{self.name}: {description}" if self.name else description
        return progress(items, label, unit="run")

    def check(self, claim: str, passed: bool, detail: str = "") -> bool:
        """Record whether the numbers bear out ``claim``."""
        self.checks.append(Check(claim, bool(passed), detail))
        return bool(passed)

    def finding(self, claim: str, reproduced: bool, detail: str = "") -> bool:
        """Record whether the survey's empirical ``claim`` reproduced in this run."""
        self.findings.append(Check(claim, bool(reproduced), detail))
        return bool(reproduced)


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # the survey's claim under test, one sentence
    run: Callable[[ExperimentRun], None]
    takes_data: bool = False  # runs on the user's --data, --train-fraction and --epochs

    def check_data(self, data: ExperimentData | None) -> None:
        """Refuse a data choice this experiment cannot use (it trains on its own sets)."""
        if data is not None and not self.takes_data:
            takers = ", ".join(e.name for e in list_experiments() if e.takes_data)
            raise CnnzooError(
                f"{self.name} trains on its own data sets; --data, --train-fraction and "
                f"--epochs apply to: {takers}"
            )


_EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(
    name: str, *, title: str, claim: str, takes_data: bool = False
) -> Callable[[Callable[[ExperimentRun], None]], Callable[[ExperimentRun], None]]:
    """Register an experiment function under ``name`` (duplicates are an error);
    ``takes_data``: it can run on the user's data choice (:class:`ExperimentData`)."""

    def decorate(run: Callable[[ExperimentRun], None]) -> Callable[[ExperimentRun], None]:
        if name in _EXPERIMENTS:
            raise ValueError(f"an experiment named {name!r} is already registered")
        _EXPERIMENTS[name] = Experiment(name, title, claim, run, takes_data)
        return run

    return decorate


def list_experiments() -> list[Experiment]:
    """Every registered experiment, in the survey's order."""
    import cnnzoo.experiments  # noqa: F401  (registers them)

    return list(_EXPERIMENTS.values())


def get_experiment(name: str) -> Experiment:
    import cnnzoo.experiments  # noqa: F401

    if name not in _EXPERIMENTS:
        known = ", ".join(_EXPERIMENTS)
        raise CnnzooError(f"unknown experiment {name!r}; known experiments: {known}")
    return _EXPERIMENTS[name]


def run_experiment(
    name: str,
    out_dir: Path,
    quick: bool = False,
    seed: int = 0,
    data: ExperimentData | None = None,
) -> ExperimentRun:
    """Run one experiment and write its ``report.md`` and ``results.json`` into ``out_dir``.

    ``data`` runs it on the user's data and budget instead of its own.
    """
    experiment = get_experiment(name)
    experiment.check_data(data)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CnnzooError(f"cannot create output directory {out_dir}: {error.strerror}") from None
    run = ExperimentRun(out_dir=out_dir, quick=quick, seed=seed, name=name, data=data)
    started = time.perf_counter()
    experiment.run(run)
    seconds = time.perf_counter() - started
    (out_dir / "results.json").write_text(
        json.dumps(
            {
                "experiment": name,
                "claim": experiment.claim,
                "quick": quick,
                "data": vars(data) if data is not None else None,
                "seconds": round(seconds, 2),
                "checks": [vars(c) for c in run.checks],
                "findings": [vars(f) for f in run.findings],
                "results": run.results,
            },
            indent=2,
            default=_jsonable,
        )
        + "\n"
    )
    (out_dir / "report.md").write_text(_report(experiment, run, seconds))
    return run


def _report(experiment: Experiment, run: ExperimentRun, seconds: float) -> str:
    mode = "quick run" if run.quick else "full run"
    lines = [
        f"# {experiment.title}",
        "",
        f"**Claim.** {experiment.claim}",
        "",
        f"Command: `cnnzoo experiment run {experiment.name}"
        f"{' --quick' if run.quick else ''}{run.data.flags() if run.data else ''}` "
        f"({mode}, {seconds:.0f} s, seed {run.seed}).",
        "",
        *[section + "\n" for section in run.sections],
        "## Findings",
        "",
        *_statements(run.findings, "reproduced", "did not reproduce"),
        "",
        "## Checks",
        "",
        *_statements(run.checks, "PASS", "FAIL"),
        "",
    ]
    return "\n".join(lines)


def _statements(statements: list[Check], held: str, failed: str) -> list[str]:
    """One report line per check or finding: its verdict, claim and detail."""
    return [
        f"- {held if s.passed else failed}: {s.claim}" + (f" ({s.detail})" if s.detail else "")
        for s in statements
    ]


def describe_budget(recipe: dict[str, Any]) -> str:
    """A training budget for the report's prose: ``"epochs 8, batch_size 16"``."""
    return ", ".join(f"{key} {value}" for key, value in recipe.items())


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in results.json")
