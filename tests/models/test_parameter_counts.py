"""The parameter counts `cnnzoo list` shows come from a record that matches the built networks."""

from __future__ import annotations

import json
from fnmatch import fnmatch
from pathlib import Path

import pytest

import cnnzoo.models.parameter_counts as parameter_counts
from cnnzoo.models.parameter_counts import (
    COUNTS_FILE,
    WRITE_COMMAND,
    differences,
    measure_counts,
    parameter_count,
    recorded_counts,
    write_counts,
)
from cnnzoo.models.registry import list_models

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, int]]:
    return measure_counts()  # every registered network, built on the meta device


def test_every_registered_network_has_its_count_recorded(
    measured: dict[str, dict[str, int]],
) -> None:
    assert list(measured) == list_models()
    stale = differences(recorded_counts(), measured)
    assert not stale, f"run `{WRITE_COMMAND}`: " + "; ".join(stale)


def test_a_record_is_at_the_default_shape_the_list_shows(
    measured: dict[str, dict[str, int]],
) -> None:
    assert measured["resnet50"] == {"num_classes": 1000, "in_channels": 3, "parameters": 25557032}
    assert measured["fcn32s"]["num_classes"] == 21  # PASCAL VOC's labels
    assert parameter_count("resnet50") == 25557032


def test_a_missing_changed_or_unknown_record_is_named() -> None:
    record = {"num_classes": 1000, "in_channels": 3, "parameters": 10}
    measured = {"a": record, "b": record}
    recorded = {"a": {**record, "parameters": 11}, "gone": record}
    assert differences(recorded, measured) == [
        f"a: recorded {recorded['a']}, built {record}",
        "b: no recorded parameter count",
        "gone: recorded but not registered",
    ]


def test_written_counts_read_back_in_registration_order(tmp_path: Path) -> None:
    counts = measure_counts(["lenet5", "lenet1989"])
    path = tmp_path / "counts.json"
    write_counts(counts, path)
    assert list(json.loads(path.read_text()).items()) == list(counts.items())
    assert len(path.read_text().splitlines()) == len(counts) + 2  # one network a line


def test_a_network_without_a_record_is_counted_by_building_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parameter_counts, "recorded_counts", dict)
    assert parameter_count("lenet5") == 146156


def test_the_record_ships_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["cnnzoo"]
    relative = COUNTS_FILE.relative_to(ROOT / "cnnzoo").as_posix()
    assert any(fnmatch(relative, pattern) for pattern in patterns)
