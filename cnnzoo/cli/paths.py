"""Output paths checked before a command does its work.

A command that trains, measures or exports for minutes and only then finds
that it cannot write its result has wasted those minutes; one that writes
over an earlier result has lost it. :func:`writable_output` checks both
first, by creating (and removing) a probe file where the output will go, so
the answer comes from the file system itself rather than from permission bits
that root, read-only mounts and ``/proc`` all make misleading.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cnnzoo.errors import CnnzooError


def add_force_flag(parser: argparse.ArgumentParser) -> None:
    """``--force``: the one way to let a command replace files it wrote before."""
    parser.add_argument(
        "--force", action="store_true", help="replace output files that already exist"
    )


def writable_output(
    path: str | Path,
    *,
    force: bool,
    directory: bool = False,
    contents: Iterable[str] = (),
    flag: str = "--out",
    label: str = "the output",
) -> Path:
    """Return ``path`` once it is known that the command may write there.

    ``path`` is one file, or with ``directory=True`` a folder that will hold
    files named by ``contents`` (names or glob patterns). An existing file
    the command would replace is refused unless ``force``; a folder that
    cannot be created or written is refused always. Each refusal is one line
    that names ``flag``, the option to change. Nothing is left behind: folders
    created for the probe are removed again.
    """
    path = Path(path)
    if directory:
        if path.exists() and not path.is_dir():
            raise CnnzooError(f"{label} {path} is a file, not a directory; choose another {flag}")
        replaced = sorted(found for pattern in contents for found in path.glob(pattern))
        folder = path
    else:
        if path.is_dir():
            raise CnnzooError(f"{label} {path} is a directory; name a file with {flag}")
        replaced = [path] if path.exists() else []
        folder = path.parent
    if replaced and not force:
        raise CnnzooError(
            f"{replaced[0]} already exists; pass --force to replace it, or choose another {flag}"
        )
    _probe(folder, flag=flag, label=f"{label} {path}")
    return path


def _probe(folder: Path, *, flag: str, label: str) -> None:
    """Create and remove a file in ``folder``, creating it for the moment if it is missing."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cnnzoo-write-test-"):
            pass
    except OSError as error:
        raise CnnzooError(
            f"cannot write to {label}: {error.strerror or error}; choose another {flag}"
        ) from None
    finally:
        for created in missing:
            # Never created (the error above), or filled meanwhile: then it stays.
            with contextlib.suppress(OSError):
                created.rmdir()
