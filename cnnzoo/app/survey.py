"""The Experiments view: the survey's claims, and the reports their runs wrote.

Each registered experiment (:mod:`cnnzoo.experiments`) states a claim. Its
report -- ``report.md`` with figures beside it -- is looked for in the runs
folder first (``RUNS/experiments/NAME`` or ``RUNS/NAME``, where
``cnnzoo experiment --out`` puts a fresh run) and then in the documentation's
``docs/experiments/NAME``, the reports published with the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnzoo.errors import CnnzooError

# The reports published with the project: beside the package in a source checkout, or
# under the folder the app was started in.
PUBLISHED_REPORTS = (
    Path(__file__).resolve().parents[2] / "docs" / "experiments",
    Path("docs") / "experiments",
)
FIGURE_SUFFIXES = (".png", ".svg")


def report_folder(name: str, runs_root: Path) -> Path | None:
    """The folder holding ``report.md`` of experiment ``name``, if one was written."""
    published = [folder / name for folder in PUBLISHED_REPORTS]
    for folder in (runs_root / "experiments" / name, runs_root / name, *published):
        if (folder / "report.md").is_file():
            return folder
    return None


def experiments(runs_root: Path) -> list[dict[str, Any]]:
    """Every experiment: name, title, claim and whether a report is there to read."""
    from cnnzoo.experiments.base import list_experiments

    return [
        {
            "name": e.name,
            "title": e.title,
            "claim": e.claim,
            "report": report_folder(e.name, runs_root) is not None,
        }
        for e in list_experiments()
    ]


def experiment_report(name: str, runs_root: Path) -> dict[str, Any]:
    """The claim, the report's markdown and the names of its figures."""
    from cnnzoo.experiments.base import get_experiment

    experiment = get_experiment(name)
    folder = report_folder(name, runs_root)
    return {
        "name": name,
        "title": experiment.title,
        "claim": experiment.claim,
        "report": (folder / "report.md").read_text() if folder else None,
        "where": str(folder) if folder else None,
        "figures": sorted(p.name for p in folder.iterdir() if p.suffix in FIGURE_SUFFIXES)
        if folder
        else [],
    }


def experiment_figure(name: str, figure: str, runs_root: Path) -> Path:
    """A figure of experiment ``name``'s report, by its plain file name."""
    from cnnzoo.experiments.base import get_experiment

    get_experiment(name)
    folder = report_folder(name, runs_root)
    if folder is None or Path(figure).name != figure or Path(figure).suffix not in FIGURE_SUFFIXES:
        raise CnnzooError(f"experiment {name!r} has no figure {figure!r}")
    path = folder / figure
    if not path.is_file():
        raise CnnzooError(f"experiment {name!r} has no figure {figure!r}")
    return path
