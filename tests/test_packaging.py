"""The package installs beside what a user has: lower bounds, every import declared, pins for make.

The metadata asks only for ``torch>=X``, so ``pip install cnnzoo`` keeps any
torch at or above the bound; the exact versions tested here live in
``constraints.txt``, which the Makefile installs with.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Modules of one distribution that need another one installed to import.
IMPLIED = {"torch.utils.tensorboard": "tensorboard"}


def _requirements(group: str | None = None) -> dict[str, Requirement]:
    lines = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def _declared() -> set[str]:
    names = set(_requirements())
    for group in PROJECT["optional-dependencies"]:
        names |= set(_requirements(group))
    return names


@pytest.mark.parametrize("name", ["torch", "torchvision"])
def test_torch_and_torchvision_have_lower_bounds_never_pins(name: str) -> None:
    requirement = _requirements()[name]
    operators = {spec.operator for spec in requirement.specifier}
    assert operators == {">="}, f"{requirement} should state only a lower bound"


@pytest.mark.parametrize("name", ["torch", "torchvision"])
def test_the_torch_installed_here_satisfies_the_bound_so_pip_keeps_it(name: str) -> None:
    installed = version(name)
    assert _requirements()[name].specifier.contains(installed, prereleases=True)


def _third_party_imports() -> dict[str, set[str]]:
    """Each imported module outside the standard library and cnnzoo, with the files importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "cnnzoo").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top != "cnnzoo" and top not in sys.stdlib_module_names:
                    found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared() -> None:
    distributions = packages_distributions()
    declared = _declared()
    missing = []
    for module, files in _third_party_imports().items():
        top = module.split(".")[0]
        needed = [IMPLIED[m] for m in IMPLIED if module.startswith(m)] or distributions.get(top)
        if not needed:
            missing.append(f"{module} (no installed distribution provides it), in {files}")
        elif not {canonicalize_name(d) for d in needed} & declared:
            missing.append(f"{module} ({', '.join(needed)}), imported in {sorted(files)}")
    assert not missing, "undeclared imports: " + "; ".join(missing)


def test_the_demo_packages_are_an_extra_and_scipy_is_declared() -> None:
    assert {"scikit-learn", "mlxtend"} <= set(_requirements("demo"))
    assert not {"scikit-learn", "mlxtend"} & set(_requirements())
    assert "scipy" in _requirements()
    assert {"mkdocs", "mkdocs-material", "mkdocstrings"} <= set(_requirements("docs"))
    assert "import-linter" in _requirements("dev")


def test_the_package_imports_without_the_demo_extra() -> None:
    code = (
        "import sys, cnnzoo, cnnzoo.cli, cnnzoo.data, cnnzoo.train.trainer; "
        "print(sorted({'sklearn', 'mlxtend'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_make_installs_with_the_constraints_file() -> None:
    constraints = (ROOT / "constraints.txt").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", constraints, flags=re.MULTILINE))
    assert {"torch", "torchvision"} <= set(pins)
    makefile = (ROOT / "Makefile").read_text()
    stamp_rule = re.search(r"^\$\(STAMP\):(.*)$", makefile, flags=re.MULTILINE)
    assert stamp_rule and "constraints.txt" in stamp_rule.group(1).split()
    assert re.search(r"pip install .*-c constraints\.txt .*-e '\.\[dev,demo,docs,app\]'", makefile)
    test_rule = makefile[makefile.index("\ntest:") :].split("\n\n")[0]
    assert test_rule.index("lint-imports") < test_rule.index("pytest")


def test_each_optional_package_the_command_line_names_is_in_that_extra() -> None:
    from cnnzoo.cli import OPTIONAL_PACKAGES

    distributions = packages_distributions()
    for module, extra in OPTIONAL_PACKAGES.items():
        (distribution,) = distributions[module]
        assert canonicalize_name(distribution) in _requirements(extra), (module, extra)
        assert canonicalize_name(distribution) not in _requirements()


def test_the_version_is_written_once_in_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cnnzoo.__version__"}
