"""The one image reader and extension list: every suffix works in class folders, mask folders
and predict alike, and a broken file is named in one clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnzoo.data import load_data, plain_request
from cnnzoo.data.images import IMAGE_EXTENSIONS, list_images, read_image, read_mask
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.predict_files import predict_images
from cnnzoo.inference.predictor import Predictor


def write_picture(path: Path, seed: int = 0, size: tuple[int, int] = (8, 10)) -> None:
    """A random colour picture in the format its suffix names (grey where the format is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    if path.suffix == ".pgm":
        image = image.convert("L")
    save_options = {"lossless": True} if path.suffix == ".webp" else {}
    image.save(path, **save_options)


def write_mask_folder(root: Path, suffix: str, count: int = 4) -> str:
    """``count`` images with ``suffix`` and binary PNG masks of their size."""
    for index in range(count):
        write_picture(root / "images" / f"im{index}{suffix}", seed=index)
        mask = np.zeros((8, 10), np.uint8)
        mask[:, index:] = 255
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(root / "masks" / f"im{index}.png")
    return f"seg-folder:{root / 'images'},{root / 'masks'}"


@pytest.mark.parametrize("suffix", IMAGE_EXTENSIONS)
def test_class_folders_mask_folders_and_predict_take_the_same_suffixes(
    tmp_path: Path, suffix: str
) -> None:
    for index, name in enumerate(("a", "a", "b", "b")):
        write_picture(tmp_path / "classes" / name / f"{index}{suffix}", seed=index)
    classes = load_data(f"folder:{tmp_path / 'classes'}", plain_request(in_channels=3, seed=0))
    assert len(classes.train) + len(classes.val) == 4
    assert tuple(classes.train.images.shape[1:]) == (3, 8, 10)

    masks = load_data(write_mask_folder(tmp_path / "seg", suffix), plain_request(augment="none"))
    assert len(masks.train) + len(masks.val) == 4
    image, mask = masks.val[0]
    assert image.shape == (3, 8, 10) and mask.shape == (8, 10)

    picture = tmp_path / "classes" / "a" / f"0{suffix}"
    loaded = Predictor(
        nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 10, 2)),
        ["a", "b"],
        "classification",
        Preprocessing(3, (8, 10), None, None),
    )
    (result,) = predict_images(loaded, [picture], topk=2)
    assert result["image"] == str(picture) and len(result["predictions"]) == 2


def test_webp_images_pair_with_masks(tmp_path: Path) -> None:
    """Mask folders once listed only PNG, JPEG, BMP and TIFF, skipping .webp without a word."""
    splits = load_data(write_mask_folder(tmp_path, ".webp", count=5), plain_request(augment="none"))
    assert (len(splits.train), len(splits.val)) == (4, 1)
    first_image = splits.train.pairs[0][0]
    assert first_image.suffix == ".webp"
    expected = np.array(Image.open(first_image).convert("RGB"))  # lossless: the pixels written
    image, _ = splits.train[0]
    assert torch.allclose(image, torch.from_numpy(expected).permute(2, 0, 1) / 255)


def test_listing_ignores_case_and_other_files(tmp_path: Path) -> None:
    write_picture(tmp_path / "b.PNG")
    write_picture(tmp_path / "a.webp")
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.webp", "b.PNG"]


def test_gray_and_color_conversion_and_resizing(tmp_path: Path) -> None:
    write_picture(tmp_path / "x.png")
    color, gray = read_image(tmp_path / "x.png"), read_image(tmp_path / "x.png", channels=1)
    assert color.shape == (8, 10, 3) and gray.shape == (8, 10, 1)
    expected = np.asarray(Image.open(tmp_path / "x.png").convert("L"))
    assert np.array_equal(gray[..., 0], expected)
    assert read_image(tmp_path / "x.png", 3, size=(4, 6)).shape == (4, 6, 3)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is text, not a JPEG", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 cut short"],
    ids=["zero bytes", "text", "truncated"],
)
def test_a_broken_file_is_named_in_one_message(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "holiday.jpg"
    path.write_bytes(content)
    with pytest.raises(CnnzooError, match=r"cannot read image .*holiday\.jpg: .*remove or replace"):
        read_image(path)
    with pytest.raises(CnnzooError, match=r"cannot read mask .*holiday\.jpg"):
        read_mask(path)


def test_a_truncated_picture_is_named(tmp_path: Path) -> None:
    write_picture(tmp_path / "whole.png", size=(64, 64))
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CnnzooError, match=r"cannot read image .*cut\.png"):
        read_image(tmp_path / "cut.png")


def test_a_corrupt_image_in_a_mask_folder_is_named(tmp_path: Path) -> None:
    spec = write_mask_folder(tmp_path, ".png")
    (tmp_path / "images" / "im2.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(CnnzooError, match=r"cannot read image .*im2\.png"):
        load_data(spec, plain_request(augment="none"))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match=r"image .*gone\.png does not exist"):
        read_image(tmp_path / "gone.png")
