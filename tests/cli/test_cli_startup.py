"""`cnnzoo --version`, `cnnzoo --help` and `import cnnzoo` answer without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs the command line as `python -m cnnzoo ARGS` does, then names the heavy modules loaded.
CODE = (
    "import runpy, sys\n"
    "try:\n"
    "    runpy.run_module('cnnzoo', run_name='__main__', alter_sys=True)\n"
    "except SystemExit as stop:\n"
    "    status = stop.code\n"
    "print(status, sorted({'torch', 'cnnzoo.models.registry'} & set(sys.modules)))\n"
)


def _run(*argv: str) -> list[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CODE, *argv],
        capture_output=True, text=True, cwd=ROOT, env=environment, timeout=300, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()


def test_version_imports_no_torch() -> None:
    from cnnzoo import __version__

    assert _run("--version") == [f"cnnzoo {__version__}", "0 []"]


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_help_lists_every_command_without_importing_torch(argv: list[str]) -> None:
    from cnnzoo.cli import COMMANDS

    lines = _run(*argv)
    assert lines[-1] == "0 []"
    text = " ".join(" ".join(lines).split())  # argparse wraps the summaries
    for name, (_, summary) in COMMANDS.items():
        assert f"{name} {summary}" in text


def test_an_unknown_command_is_refused_without_importing_torch() -> None:
    assert _run("lst") == ["2 []"]


def test_a_commands_own_help_builds_its_flags() -> None:
    lines = _run("list", "--help")
    assert any("--format" in line for line in lines)
    assert lines[-1] == "0 ['cnnzoo.models.registry', 'torch']"


def test_import_cnnzoo_imports_no_torch_until_the_registry_is_asked() -> None:
    code = (
        "import sys, cnnzoo; print('torch' in sys.modules); "
        "print(cnnzoo.list_models('lenet*'), 'torch' in sys.modules)"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, env=environment, timeout=300, check=True,
    )  # fmt: skip
    assert result.stdout.splitlines() == ["False", "['lenet1989', 'lenet5'] True"]


def test_the_package_names_its_lazy_functions() -> None:
    import cnnzoo
    from cnnzoo.models import registry

    for name in ("create_model", "get_model_entry", "list_models", "register_model"):
        assert name in dir(cnnzoo) and getattr(cnnzoo, name) is getattr(registry, name)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        cnnzoo.no_such_name  # noqa: B018
