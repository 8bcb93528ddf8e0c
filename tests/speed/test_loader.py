"""The loader benchmark and the synthetic-folder command, on a tiny folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.data.synthetic_folder import FolderSpec, write_image_folder
from cnnzoo.speed.loader import benchmark_loader


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loader") / "images"
    write_image_folder(root, FolderSpec(images=40, classes=2, size=(20, 24)))
    return root


def test_loader_benchmark_prints_one_json_document_with_images_per_second(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "benchmark", "--loader", "--data", f"folder:{folder}", "--image-size", "16",
        "--batch-size", "4", "--batches", "2", "--workers", "0", "--vs-torchvision",
        "--format", "json",
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images_per_second"] > 0 and result["torchvision_images_per_second"] > 0
    assert result["speedup_vs_torchvision"] == pytest.approx(
        result["images_per_second"] / result["torchvision_images_per_second"]
    )
    assert result["decode_images_per_second_one_core"] > 0 and "cores" in result["load"]


def test_loader_benchmark_with_workers_and_a_table(folder: Path) -> None:
    result = benchmark_loader(
        f"folder:{folder}", image_size=16, batch_size=4, workers=1, batches=2, rounds=1
    )
    assert result.images_per_second > 0 and result.torchvision_images_per_second is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["benchmark", "--loader", "resnet18", "--data", "folder:x"], "drop the MODEL"),
        (["benchmark", "--loader", "--data", "digits"], "give --data folder:PATH"),
        (["benchmark"], "name a MODEL"),
    ],
)
def test_loader_benchmark_mistakes_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_make_folder_writes_the_imagenet_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "made"
    argv = ["make-folder", str(out), "--images", "12", "--classes", "2", "--size", "16,20",
            "--splits", "train,val", "--seed", "3", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "wrote 12 16x20 JPEGs in 2 classes" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["train", "val"]
    assert len(list(out.glob("*/class_001/*.jpg"))) == 6
    assert main(["make-folder", str(out), "--images", "12"]) == 2  # never overwrites
    with pytest.raises(SystemExit):
        main(["make-folder", str(tmp_path / "x"), "--splits", "holdout"])
