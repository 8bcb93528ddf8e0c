"""The synthetic image folder: layout, determinism, refusal to overwrite, learnable classes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from cnnzoo.data.synthetic_folder import FolderSpec, class_image, write_image_folder
from cnnzoo.errors import CnnzooError


def _digest(paths):
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()


def test_class_folders_hold_equal_shares_of_jpegs(tmp_path):
    paths = write_image_folder(tmp_path / "f", FolderSpec(images=12, classes=3, size=(20, 30)))
    assert len(paths) == 12
    folders = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert folders == ["class_000", "class_001", "class_002"]
    assert all(len(list((tmp_path / "f" / d).glob("*.jpg"))) == 4 for d in folders)
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG" and image.size == (30, 20) and image.mode == "RGB"


def test_split_layout_divides_images_by_share(tmp_path):
    spec = FolderSpec(images=40, classes=4, size=(16, 16), splits=("train", "val"),
                      split_shares=(0.75, 0.25))  # fmt: skip
    write_image_folder(tmp_path / "f", spec)
    assert len(list((tmp_path / "f" / "train").rglob("*.jpg"))) == 30
    assert len(list((tmp_path / "f" / "val").rglob("*.jpg"))) == 10
    assert sorted(p.name for p in (tmp_path / "f" / "val").iterdir())[-1] == "class_003"


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    spec = FolderSpec(images=8, classes=2, size=(16, 16), seed=3)
    one = write_image_folder(tmp_path / "a", spec)
    two = write_image_folder(tmp_path / "b", spec, workers=2)
    other = write_image_folder(tmp_path / "c", FolderSpec(images=8, classes=2, size=(16, 16)))
    assert _digest(one) == _digest(two)
    assert _digest(one) != _digest(other)


def test_refuses_to_write_into_a_folder_with_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(CnnzooError, match="not empty"):
        write_image_folder(tmp_path, FolderSpec(images=4, classes=2, size=(16, 16)))
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "spec, message",
    [
        (FolderSpec(images=4, classes=1), "at least 2 classes"),
        (FolderSpec(images=4, classes=2, size=(4, 4)), "at least 8x8"),
        (FolderSpec(images=4, classes=2, splits=("training",)), "splits must be"),
        (FolderSpec(images=3, classes=2, splits=("train", "val")), "more images"),
    ],
)
def test_bad_specs_are_explained(tmp_path, spec, message):
    with pytest.raises(CnnzooError, match=message):
        write_image_folder(tmp_path / "f", spec)


def test_classes_differ_more_than_images_of_one_class():
    """A nearest-mean classifier on the mean colour separates the classes: they are learnable."""
    rng = np.random.default_rng(0)
    means = np.array([
        [class_image(label, 5, (24, 24), rng).mean((0, 1)) for _ in range(6)]
        for label in range(5)
    ])  # fmt: skip
    centers = means.mean(1)
    nearest = np.linalg.norm(means[:, :, None] - centers[None, None], axis=-1).argmin(-1)
    assert (nearest == np.arange(5)[:, None]).mean() == 1.0
