"""The run directory policy: never overwrite by accident, resume only the same recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.config import save_config
from cnnzoo.runs.directory import (
    RUN_FILES,
    default_run_dir,
    prepare_run_dir,
    resumed_config,
    run_dir_of,
    saved_recipe,
    scratch_run,
)
from cnnzoo.train import TrainConfig


def test_the_default_directory_is_safe_for_any_data_name() -> None:
    config = TrainConfig(model="resnet18", data="folder:/data/my images")
    assert default_run_dir(config) == Path("runs/resnet18-folder--data-my-images")
    assert run_dir_of(TrainConfig(out="elsewhere")) == Path("elsewhere")


def test_an_existing_run_needs_resume_or_force(tmp_path: Path) -> None:
    (tmp_path / "last.pt").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CnnzooError, match="--resume.*--force"):
        prepare_run_dir(tmp_path, resume=False, force=False)
    prepare_run_dir(tmp_path, resume=True, force=False)
    assert (tmp_path / "last.pt").exists()
    prepare_run_dir(tmp_path, resume=False, force=True)
    assert not (tmp_path / "last.pt").exists() and (tmp_path / "notes.txt").exists()
    assert "grad_norms.csv" in RUN_FILES


def test_resume_reads_the_saved_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = default_run_dir(TrainConfig(model="lenet5", data="digits"))
    run.mkdir(parents=True)
    save_config(TrainConfig(model="lenet5", data="digits", lr=0.01), run / "config.yaml")
    recipe = saved_recipe({"model": "lenet5", "data": "digits"})
    assert recipe["lr"] == 0.01 and recipe["out"] == str(run)
    with pytest.raises(CnnzooError, match="--out RUN_DIR"):
        saved_recipe({})
    with pytest.raises(CnnzooError, match="nothing to resume"):
        saved_recipe({"out": str(tmp_path / "none")})


def test_a_resumed_run_may_change_only_the_resumable_fields(tmp_path: Path) -> None:
    saved = TrainConfig(model="lenet5", epochs=2)
    payload = {"format": 1, "model_name": "lenet5", "task": "classification", "model": {}}
    state = Checkpoint.from_dict({**payload, "class_names": ["a"], "config": saved.to_dict()})
    longer = TrainConfig(model="lenet5", epochs=5)
    assert resumed_config(state, longer, tmp_path) is longer
    with pytest.raises(CnnzooError, match="lr differ"):
        resumed_config(state, TrainConfig(model="lenet5", lr=1.0), tmp_path)
    with pytest.raises(CnnzooError, match="is of 'lenet5'"):
        resumed_config(state, TrainConfig(model="alexnet"), tmp_path)


def test_a_scratch_run_is_quiet_and_leaves_nothing() -> None:
    with scratch_run(TrainConfig(lr=0.2), "test") as config:
        run_dir = Path(config.out)
        assert run_dir.is_dir() and run_dir.name.startswith("cnnzoo-test-")
        assert config.quiet and not config.plots and config.lr == 0.2
    assert not run_dir.exists()
