"""Progress bars for every step a person waits for, written once.

Evaluation, prediction, benchmark rounds, comparisons, each experiment's
runs, data decoding and training epochs all show a tqdm bar on standard
error through :func:`progress`. A bar appears only when standard error is a
terminal, so logs and pipes stay clean, and :func:`set_quiet` (the command
line's ``--quiet``) turns every bar off for the rest of the process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

Item = TypeVar("Item")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every progress bar of this process off (``True``) or back on."""
    global _quiet
    _quiet = quiet


def bars_enabled() -> bool:
    """Whether a bar would be drawn now: output wanted and standard error a terminal."""
    return not _quiet and sys.stderr.isatty()


def progress(
    items: Iterable[Item],
    description: str,
    *,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
) -> Iterator[Item]:
    """Iterate over ``items`` with a bar named ``description`` when bars are on.

    ``total`` defaults to ``len(items)`` where it has one; ``enabled=False``
    turns this one bar off (a worker process that is not the main one, say).
    The bar is removed when the iteration ends, so the lines printed after it
    stay readable.
    """
    if not enabled or not bars_enabled():
        yield from items
        return
    from tqdm import tqdm

    bar = tqdm(items, total=total, desc=description, unit=unit, leave=False, dynamic_ncols=True)
    try:
        yield from bar
    finally:
        bar.close()


@contextmanager
def progress_bar(
    total: int | None, description: str, *, unit: str = "it", enabled: bool = True
) -> Iterator[Any]:
    """A bar advanced by hand (``bar.update(n)``, ``bar.set_postfix(...)``).

    Where bars are off, the object yielded accepts the same calls and does
    nothing, so callers never test whether a bar is shown.
    """
    if not enabled or not bars_enabled():
        yield _SilentBar()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=description, unit=unit, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


class _SilentBar:
    """Stands in for a tqdm bar when none is shown."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, description: str) -> None:
        pass
