"""The import layers of pyproject.toml hold, and breaking them is caught.

`lint-imports` (import-linter) checks the contracts in ``[tool.importlinter]``:
a module imports only from the layers below its own, and training, evaluation and the
data reach networks only through the registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_package_keeps_its_layers() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "cnnzoo", tmp_path / "cnnzoo", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    network = tmp_path / "cnnzoo" / "models" / "classification" / "lenet.py"
    network.write_text(
        network.read_text() + "\nimport cnnzoo.train  # a network knowing training\n"
    )
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "cnnzoo.models.classification.lenet -> cnnzoo.train" in result.stdout
