"""Shared test settings: deterministic seeds and the path of the real ISBI data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ISBI_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


# The suite runs as two pytest-xdist workers on a 2-core machine: one thread each
# avoids the two workers' thread pools fighting over the cores (about 10x slower).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def isbi_dir() -> Path:
    """The real ISBI 2012 slices; tests that need them skip where they are absent."""
    if not (ISBI_DIR / "images").is_dir():
        pytest.skip(f"ISBI 2012 data not found at {ISBI_DIR}")
    return ISBI_DIR
