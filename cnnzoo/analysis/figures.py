"""Saving a figure without touching matplotlib's global state.

Library code draws on a :class:`matplotlib.figure.Figure` of its own instead
of through ``pyplot``: pyplot keeps every figure in a global registry and
``matplotlib.use`` would switch the plotting backend of the user's notebook
or application. A bare ``Figure`` renders to a file with the Agg canvas and
is freed like any other object.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(figure: Figure, path: Path, **savefig_options: Any) -> Path:
    """Lay ``figure`` out tightly and write it to ``path`` (its folder is created)."""
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, **savefig_options)
    return path
