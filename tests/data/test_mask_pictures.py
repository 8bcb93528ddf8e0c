"""Predictions written as a colour-coded class-index PNG and an overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.data.mask_pictures import class_palette, save_prediction
from cnnzoo.errors import CnnzooError


def test_palette_is_pascal_voc() -> None:
    palette = class_palette(22)
    assert palette[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert palette[15].tolist() == [192, 128, 128]  # person
    assert len({tuple(c) for c in palette}) == 22


@pytest.mark.parametrize("channels", [1, 3])
def test_save_prediction_writes_mask_and_overlay(tmp_path: Path, channels: int) -> None:
    logits = torch.randn(3, 20, 30)
    image = torch.rand(channels, 20, 30)
    paths = save_prediction(image, logits, ["sky", "road", "car"], tmp_path / "out", "frame")
    assert [p.name for p in paths] == ["frame_mask.png", "frame_overlay.png"]
    mask = Image.open(paths[0])
    assert mask.mode == "P"
    assert np.array_equal(np.asarray(mask), logits.argmax(0).numpy())
    assert mask.getpalette()[3:6] == [128, 0, 0]
    overlay = Image.open(paths[1])
    assert overlay.mode == "RGB" and overlay.width >= 30 and overlay.height > 20


def test_mismatched_class_names_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="2 class names for a 3-class prediction"):
        save_prediction(torch.rand(3, 4, 4), torch.randn(3, 4, 4), ["a", "b"], tmp_path, "x")
    with pytest.raises(CnnzooError, match="differ"):
        save_prediction(torch.rand(3, 5, 4), torch.randn(2, 4, 4), ["a", "b"], tmp_path, "x")
