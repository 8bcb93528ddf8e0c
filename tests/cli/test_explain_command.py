"""``cnnzoo explain``: Grad-CAM, feature-map and SE pictures, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from cnnzoo.cli import main


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    image = Image.new("RGB", (40, 36), (20, 30, 40))
    ImageDraw.Draw(image).ellipse((8, 6, 30, 28), fill=(230, 200, 40))
    path = tmp_path / "blob.png"
    image.save(path)
    return path


def _written(capsys: pytest.CaptureFixture) -> Path:
    out = capsys.readouterr().out.strip()
    assert out.startswith("wrote ")
    return Path(out.removeprefix("wrote "))


def _check_png(path: Path, min_size: tuple[int, int]) -> None:
    image = Image.open(path)
    assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
    low, high = image.convert("L").getextrema()
    assert high - low > 50, "the picture is blank"


def test_gradcam_png(picture: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["explain", "se_resnet20", str(picture), "--out", str(tmp_path / "out")]
    assert main([*argv, "--class", "3"]) == 0
    path = _written(capsys)
    assert path.name == "blob_gradcam_stage3.png"
    _check_png(path, (800, 300))


def test_feature_grid_png(picture: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["explain", "lenet5", str(picture), "--method", "features", "--layer", "c1"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    path = _written(capsys)
    assert path.name == "blob_features_c1.png"
    _check_png(path, (300, 200))


def test_se_weights_png(picture: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["explain", "se_resnet20", str(picture), "--method", "se", "--layer", "stage2.1"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    path = _written(capsys)
    assert path.name == "blob_se_stage2.1.attention.png"
    _check_png(path, (600, 250))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lenet5", "IMAGE", "--method", "se"], "no squeeze-and-excitation blocks"),
        (["lenet5", "IMAGE", "--layer", "c9"], "no layer 'c9'"),
        (["lenet5", "IMAGE", "--class", "1000"], "--class must be in 0..999"),
        (["lenet5", "IMAGE", "--method", "features", "--layer", "f6"], "does not produce"),
        (["lenet5", "missing.png"], "does not exist"),
        (["lenet9", "IMAGE"], "unknown model"),
    ],
)
def test_mistakes_are_one_line_errors(
    picture: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    argv = [str(picture) if a == "IMAGE" else a for a in argv]
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
