"""``cnnzoo train --dry-run`` prints the run's resolved plan and trains and writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.cli import main


def dry_run(argv: list[str], capsys: pytest.CaptureFixture) -> dict[str, str]:
    """The plan's lines, by name."""
    assert main(["train", *argv, "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return dict(line.split(": ", 1) for line in lines)


def test_a_digits_plan_names_input_data_steps_recipe_and_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    argv = ["lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "3"]
    argv += ["--batch-size", "32", "--lr", "0.1", "--optimizer", "adam", "--out", str(out)]
    shown = dry_run(argv, capsys)
    assert shown["model"] == "lenet1989 (classification)"
    assert shown["input"] == "1 channel (grey), 16x16 (H x W)"
    assert shown["data"] == "digits, held in memory (decoded whole by its source)"
    assert shown["training images"] == "1,294"
    assert shown["batches per epoch"] == "41"
    assert shown["total steps"] == "123 over 3 epoch(s)"
    assert shown["recipe"].startswith("adam lr 0.1 ")
    assert "schedule cosine, 3 epochs of batches of 32, augmentation basic" in shown["recipe"]
    assert shown["recipe"].endswith("precision fp32")
    assert shown["starting weights"] == "a fresh initialization (seed 0)"
    assert shown["normalization"] == "the data's own statistics"
    assert shown["run directory"] == str(out)
    assert shown["dry run"] == f"nothing trained, {out} not written"
    assert not out.exists()


@pytest.mark.parametrize(
    ("mode", "shown_mode"), [("auto", "held in memory (0.0 MB decoded <= 512 MB budget)"),
                             ("stream", "streamed from disk (0.0 MB decoded, --data-mode stream)")],
)  # fmt: skip
def test_a_folder_plan_reads_the_folders_channels_and_says_how_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture, mode: str, shown_mode: str
) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(8):
            pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{index}.png")
    data = f"folder:{tmp_path / 'images'}"
    argv = ["lenet5", "--data", data, "--val-fraction", "0.25", "--data-mode", mode]
    argv += ["--workers", "0", "--iterations", "5", "--batch-size", "4"]
    shown = dry_run(["--out", str(tmp_path / "run"), *argv], capsys)
    assert shown["input"] == "3 channels (colour), 32x32 (H x W)"  # LeNet-5's size, RGB data
    assert shown["data"] == f"{data}, {shown_mode}"
    assert shown["training images"] == "12"  # 16 less a quarter held out
    assert (shown["batches per epoch"], shown["total steps"]) == ("3", "5 over 2 epoch(s)")
    assert not (tmp_path / "run").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["images"]


def test_a_dry_run_of_a_bad_pairing_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["train", "unet", "--data", "digits", "--out", str(tmp_path / "r"), "--dry-run"])
    assert "pick a segmentation data set" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
