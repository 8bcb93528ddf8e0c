"""The documentation site builds offline with --strict, and its model pages come from the registry.

A broken link, a reference to a module that no longer exists or a docstring
mkdocstrings cannot read fails the build, so the site cannot go stale quietly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from torch import nn

from cnnzoo.models import registry
from cnnzoo.models.registry import create_model, get_model_entry, register_model

ROOT = Path(__file__).resolve().parents[2]
DUMMY_FAMILY = "Tiny Test Net"
DUMMY_PAPER = "Nobody 2026, A Network Too Small to Publish"


def _model_pages_module():
    """docs/hooks/model_pages.py, imported from its file (docs/ is no package)."""
    if "model_pages" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "model_pages", ROOT / "docs" / "hooks" / "model_pages.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["model_pages"] = module  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules["model_pages"]


class TinyTestNet(nn.Module):
    """One convolution, global pooling and a linear classifier."""

    input_size = (1, 8, 8)  # (C, H, W) its "paper" used
    min_input_size = 3  # one 3x3 convolution without padding

    def __init__(self, num_classes: int = 1000, in_channels: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, kernel_size=3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


@pytest.fixture
def tiny_test_net() -> Iterator[str]:
    """A network of its own family in the registry for the test's duration."""
    registry.list_models()  # the real families register first, so the dummy comes last

    def tiny_test_net(num_classes: int = 1000, in_channels: int = 1) -> nn.Module:
        return TinyTestNet(num_classes, in_channels)

    register_model(family=DUMMY_FAMILY, paper=DUMMY_PAPER)(tiny_test_net)
    try:
        yield "tiny_test_net"
    finally:
        registry._REGISTRY.pop("tiny_test_net", None)


def test_a_registered_model_gets_its_page(tiny_test_net: str) -> None:
    pages = _model_pages_module().model_pages([tiny_test_net])
    page = pages["models/tiny-test-net.md"]
    entry = get_model_entry(tiny_test_net)
    params = sum(
        p.numel() for p in create_model(tiny_test_net, in_channels=entry.input_size[0]).parameters()
    )
    assert page.startswith(f"# {DUMMY_FAMILY}\n")
    assert DUMMY_PAPER in page
    assert f"## {tiny_test_net}" in page
    assert f"{params:,}" in page
    assert '<svg class="cnnzoo-diagram"' in page
    assert "[Tiny Test Net](tiny-test-net.md)" in pages["models/index.md"]


def test_no_two_families_share_a_page() -> None:
    families = {get_model_entry(name).family for name in registry.list_models()}
    slug = _model_pages_module().family_slug
    assert len({slug(family) for family in families}) == len(families)


def _mkdocs() -> str | None:
    """The mkdocs beside this interpreter (the project's .venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "mkdocs"
    return str(beside) if beside.exists() else shutil.which("mkdocs")


@pytest.mark.skipif(_mkdocs() is None, reason="mkdocs comes with the docs extra")
def test_site_builds_offline_with_strict(tmp_path: Path) -> None:
    command = [_mkdocs(), "build", "--strict", "-d", str(tmp_path)]
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": python_path, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    resnet = (tmp_path / "models" / "resnet" / "index.html").read_text()
    assert "11,689,512" in resnet  # ResNet-18 at 1000 classes, from the registry
    assert (tmp_path / "extending" / "index.html").exists()
