"""The table of data sources: descriptions from docstrings, declared channel counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from cnnzoo.data import (
    DataRequest,
    DataSplits,
    base,
    list_datasets,
    load_data,
    plain_request,
    register_dataset,
)
from cnnzoo.data.protocol import Split
from cnnzoo.errors import CnnzooError


@pytest.fixture
def own_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources registered in a test vanish with it."""
    monkeypatch.setattr(base, "_SOURCES", dict(base._SOURCES))


def test_a_source_is_described_by_its_docstring(own_table: None) -> None:
    @register_dataset("toy", task="classification")
    def load_toy(request: DataRequest) -> DataSplits:
        """Three toy pictures.

        Nothing else to say.
        """
        raise AssertionError("not loaded in this test")

    (entry,) = [entry for entry in list_datasets() if entry.name == "toy"]
    assert entry.description == "Three toy pictures."
    with pytest.raises(ValueError, match="describe the data source 'bare'"):
        register_dataset("bare", task="classification")(lambda request: None)


def test_every_registered_source_has_a_description() -> None:
    assert all(entry.description for entry in list_datasets())


def test_declared_channels_are_checked_before_any_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="shapes images have 1 or 3 channels, not 4"):
        load_data("shapes", plain_request(in_channels=4))
    with pytest.raises(CnnzooError, match="images have 1 or 3 channels, not 2"):
        load_data(f"seg-folder:{tmp_path / 'nowhere'},{tmp_path}", plain_request(in_channels=2))


def test_plain_torch_data_sets_come_back_as_splits(own_table: None) -> None:
    @register_dataset("plain", task="classification")
    def load_plain(request: DataRequest) -> DataSplits:
        """Four samples in TensorDatasets."""
        samples = TensorDataset(torch.zeros(4, 1, 2, 2), torch.arange(4))
        return DataSplits("classification", samples, samples, None, ["a", "b", "c", "d"])

    splits = load_data("plain")
    assert isinstance(splits.train, Split) and isinstance(splits.val, Split)
    assert splits.test is None and splits.train.batch is None and len(splits.val) == 4
