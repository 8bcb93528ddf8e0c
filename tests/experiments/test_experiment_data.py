"""`cnnzoo experiment run NAME --data SOURCE`: an experiment on the user's data and budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.experiments import ExperimentData, ExperimentRun, registered_training
from cnnzoo.experiments import degradation as degradation_module


def _class_folder(root: Path, classes: int = 3, per_class: int = 8) -> Path:
    """``classes`` x ``per_class`` colour 32x32 PNGs in train/ and test/."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                pixels[..., label] = 255  # each class has its own dominant colour
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _class_folder(tmp_path_factory.mktemp("colour-folder"))


@pytest.mark.parametrize("name", ["degradation", "se-attention"])
def test_quick_run_on_a_chosen_folder_names_it(
    name: str, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    spec = f"folder:{folder}"
    status = main(["experiment", "run", name, "--quick", "--data", spec, "--out", str(out)])
    report = (out / "report.md").read_text()
    assert status == 0, capsys.readouterr().out
    assert f"`{spec}` at 32x32 (3 channels)" in report
    assert f"--quick --data {spec}`" in report
    assert "digits" not in report and "8x8" not in report


def test_the_train_fraction_and_epochs_are_laid_over_the_recipe(folder: Path) -> None:
    run = ExperimentRun(
        out_dir=Path("."),
        quick=False,
        data=ExperimentData(f"folder:{folder}", train_fraction=0.5, epochs=7),
    )
    recipe = run.recipe({**degradation_module.RECIPE, "epochs": 12, "seed": 3})
    assert recipe == {
        "data": f"folder:{folder}",
        "image_size": None,
        "in_channels": None,
        "batch_size": 64,
        "lr": 0.05,
        "epochs": 7,
        "seed": 3,
        "train_fraction": 0.5,
    }


def test_without_data_the_experiment_trains_on_its_own_recipe(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []
    real = registered_training.train_registered

    def recording(name: str, recipe: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        seen.append(dict(recipe or {}))
        return real(name, recipe, **kwargs)

    monkeypatch.setattr(degradation_module, "train_registered", recording)
    status = main(["experiment", "run", "degradation", "--quick", "--out", str(tmp_path)])
    assert status == 0
    assert seen and all(
        recipe == {**degradation_module.RECIPE, "iterations": 3, "batch_size": 32, "seed": 0}
        for recipe in seen
    )
    report = (tmp_path / "report.md").read_text()
    assert "Every network trained on `digits` at 8x8 (a fixed 20% test split" in report
    assert "cnnzoo experiment run degradation --quick` (quick run" in report


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data", "nosuch"], "unknown data set 'nosuch'"),
        (["--data", "folder:/no/such/folder"], "no such folder"),
        (["--data", "shapes"], "segmentation data set"),
        (["--train-fraction", "1.5"], "--train-fraction must be in (0, 1]"),
        (["--epochs", "0"], "--epochs must be at least 1"),
    ],
)
def test_bad_data_choice_is_one_line(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    status = main(["experiment", "run", "degradation", "--quick", *flags, "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert message in error and "\n" not in error
    assert not out.exists()


def test_experiment_data_refuses_a_bad_fraction() -> None:
    with pytest.raises(CnnzooError, match="train-fraction"):
        ExperimentData(train_fraction=0.0)


def test_small_kernels_reads_the_chosen_folder(folder: Path, tmp_path: Path) -> None:
    spec = f"folder:{folder}"
    argv = ["experiment", "run", "small-kernels", "--quick", "--data", spec, "--out", str(tmp_path)]
    status = main(argv)
    report = (tmp_path / "report.md").read_text()
    assert status == 0
    assert f"four times on `{spec}` (32x32, 3 channels)" in report


@pytest.mark.parametrize("name", ["fcn-skips", "transfer", "inception-reduction"])
def test_an_experiment_on_its_own_data_sets_refuses_a_data_choice(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    status = main(["experiment", "run", name, "--quick", "--data", "digits", "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in error
    assert f"{name} trains on its own data sets" in error and "degradation" in error
    assert not out.exists()
