"""The input a network trains on: the data's own channels, and for segmentation its own size.

A paper's input (U-Net's 1x572x572) applies only when asked for, with
``--image-size paper`` or explicit values; ``--image-size`` takes H,W.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import get_model_entry
from cnnzoo.runs.config import TrainConfig, config_from_dict
from cnnzoo.runs.plan import requested_input
from cnnzoo.train.trainer import Trainer


@pytest.mark.parametrize(
    ("given", "stored"),
    [("180,240", [180, 240]), ("224", 224), ("paper", "paper"), (96, 96), ([60, 80], [60, 80])],
)
def test_image_size_takes_h_w_one_side_or_paper(given: object, stored: object) -> None:
    assert config_from_dict({"image_size": given}).image_size == stored


@pytest.mark.parametrize("given", ["big", "1,2,3", [1, 2, 3], "0,5", "papers"])
def test_a_bad_image_size_is_one_line(given: object) -> None:
    with pytest.raises(CnnzooError, match="image_size|image sides"):
        config_from_dict({"image_size": given})


def test_the_flag_takes_h_w() -> None:
    from cnnzoo.cli import build_parser
    from cnnzoo.cli.train import build_config

    args = build_parser().parse_args(["train", "unet", "--image-size", "180,240"])
    assert build_config(args).image_size == [180, 240]


def test_segmentation_asks_for_the_datas_size_and_channels() -> None:
    unet = get_model_entry("unet")
    assert requested_input(TrainConfig(model="unet", data="shapes"), unet) == (None, None)
    paper = TrainConfig(model="unet", data="shapes", image_size="paper")
    assert requested_input(paper, unet) == (None, (572, 572))
    explicit = TrainConfig(model="unet", data="shapes", image_size=[180, 240], in_channels=1)
    assert requested_input(explicit, unet) == (1, (180, 240))


def test_a_classifier_keeps_the_papers_size_but_the_datas_channels() -> None:
    lenet = get_model_entry("lenet5")
    assert requested_input(TrainConfig(), lenet) == (None, (32, 32))
    with pytest.raises(CnnzooError, match="at least 32x32"):
        requested_input(TrainConfig(image_size=[16, 40]), lenet)


def test_scale_crop_is_refused_for_classification() -> None:
    with pytest.raises(CnnzooError, match="scale-crop is for segmentation"):
        requested_input(TrainConfig(augment="scale-crop"), get_model_entry("lenet5"))


def test_colour_images_train_a_grey_papers_network_in_colour(tmp_path: Path) -> None:
    """LeNet-5 took 1 channel; a folder of RGB pictures gives it 3 unless told otherwise."""
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{index}.png")
    config = TrainConfig(
        model="lenet5", data=f"folder:{tmp_path / 'images'}", out=str(tmp_path / "run"),
        val_fraction=0.2, quiet=True,
    )  # fmt: skip
    assert Trainer(config).in_channels == 3
    grey = TrainConfig(**{**config.to_dict(), "in_channels": 1, "out": str(tmp_path / "grey")})
    assert Trainer(grey).in_channels == 1


def test_grey_digits_train_a_colour_papers_network_in_grey(tmp_path: Path) -> None:
    config = TrainConfig(
        model="resnet20", data="digits", image_size=8, out=str(tmp_path / "run"), quiet=True
    )
    trainer = Trainer(config)
    assert trainer.in_channels == 1 and trainer.image_size == (8, 8)
