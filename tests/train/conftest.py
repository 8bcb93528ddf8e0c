"""Fixtures of the engine's tests: torchrun launchers running this source tree, and a
class folder they stream from disk."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cnnzoo.data.synthetic_folder import FolderSpec, write_image_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def launch_torchrun(tmp_path: Path) -> Iterator[Callable[[list[str]], subprocess.Popen]]:
    """Starts ``torchrun ARGUMENTS`` in ``tmp_path`` on this tree, one thread per process.

    Launchers still running when the test ends (a failed assertion) are killed.
    """
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launched: list[subprocess.Popen] = []

    def launch(arguments: list[str]) -> subprocess.Popen:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", *arguments], cwd=tmp_path,
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        launched.append(launcher)
        return launcher

    yield launch
    for launcher in launched:
        launcher.kill()
        launcher.communicate()


@pytest.fixture(scope="session")
def class_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``folder:PATH`` of 120 JPEGs of 20x20 in 3 classes: 108 train, 12 validate."""
    root = tmp_path_factory.mktemp("class-folder") / "images"
    write_image_folder(root, FolderSpec(images=120, classes=3, size=(20, 20), seed=0))
    return f"folder:{root}"
