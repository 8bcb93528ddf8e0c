"""Checkpoints: atomic writes, plain-data loading, random state round trips."""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import (
    Checkpoint,
    TrainingState,
    capture_rng_state,
    restore_rng_state,
    save_checkpoint,
)


def _payload() -> dict:
    return {
        "format": 1,
        "model_name": "lenet5",
        "task": "classification",
        "class_names": ["a", "b"],
        "model": {"weight": torch.ones(2)},
        "config": {"model": "lenet5"},
        "rng": capture_rng_state(),
    }


def test_save_replaces_atomically_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(_payload(), path)
    save_checkpoint({**_payload(), "class_names": ["c", "d"]}, path)
    assert Checkpoint.load(path).class_names == ["c", "d"]
    assert os.listdir(tmp_path) == ["last.pt"]


def test_random_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    state = TrainingState(optimizer={}, scheduler={}, rng=capture_rng_state())
    dataclasses.replace(Checkpoint.from_dict(_payload()), training=state).save(path)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(Checkpoint.load(path).training.rng)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


class _Payload:
    """Unpickling this would run os.system; a safe loader must refuse it."""

    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


def test_a_pickle_carrying_code_is_refused_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({**_payload(), "model": _Payload()}, path)
    with pytest.raises(CnnzooError, match="is refused: it holds Python objects"):
        Checkpoint.load(path)
    with open(path, "wb") as handle:  # the same as a bare pickle stream
        pickle.dump({**_payload(), "model": _Payload()}, handle)
    with pytest.raises(CnnzooError, match="not a readable checkpoint"):
        Checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()


def test_files_that_are_not_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CnnzooError, match="not a readable checkpoint"):
        Checkpoint.load(tmp_path / "junk.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(CnnzooError, match="not a cnnzoo checkpoint"):
        Checkpoint.load(tmp_path / "other.pt")
