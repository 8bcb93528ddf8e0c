"""Image files named on the command line, prepared as evaluation prepares them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnzoo.data.files import ImageFiles, find_images, unique_stems
from cnnzoo.data.images import read_image
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.data.sources.class_folders import split_folder
from cnnzoo.data.streaming import FolderSamples, SampleRecipe
from cnnzoo.errors import CnnzooError


def _picture(path: Path, size: tuple[int, int] = (20, 12)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = torch.randint(0, 256, (size[1], size[0], 3), dtype=torch.uint8).numpy()
    Image.fromarray(noise).save(path)
    return path


def test_folders_are_searched_recursively_and_other_files_set_aside(tmp_path: Path) -> None:
    images = [_picture(tmp_path / "a" / "x.png"), _picture(tmp_path / "a" / "b" / "y.jpg")]
    (tmp_path / "a" / "notes.txt").write_text("not a picture")
    (tmp_path / "a" / "b" / "labels.csv").write_text("x,1")
    found = find_images([tmp_path / "a"])
    assert sorted(found.images) == sorted(images)
    assert sorted(p.name for p in found.others) == ["labels.csv", "notes.txt"]
    line = found.skipped_line()
    assert line.startswith("skipped 2 file(s) that are not images:") and "notes.txt" in line


def test_a_quoted_glob_is_expanded_and_repeats_are_dropped(tmp_path: Path) -> None:
    first = _picture(tmp_path / "one.png")
    _picture(tmp_path / "deep" / "two.png")
    found = find_images([str(tmp_path / "*.png"), str(first)])
    assert found.images == [first]
    assert len(find_images([str(tmp_path / "**" / "*.png")]).images) == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.png", "does not exist"), ("*.gif", "matches no file"), ("notes", "no image files")],
)
def test_nothing_to_predict_is_one_message(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("text")
    with pytest.raises(CnnzooError, match=message):
        find_images([str(tmp_path / name)])


def test_repeated_stems_take_their_folders() -> None:
    paths = [Path("d/cat/001.jpg"), Path("d/dog/001.jpg"), Path("d/cat/002.jpg")]
    assert unique_stems(paths) == ["d_cat_001", "d_dog_001", "002"]


def test_files_are_prepared_as_the_folder_sources_prepare_them(tmp_path: Path) -> None:
    path = _picture(tmp_path / "photo.png", size=(40, 30))
    streamed = FolderSamples([path], torch.zeros(1), SampleRecipe((16, 16), 3, crop_ratio=0.875))
    image, index = ImageFiles([path], Preprocessing(3, (16, 16), 0.875, None))[0]
    assert index == 0 and torch.equal(image, streamed[(0, 0)][0])
    in_memory = torch.from_numpy(read_image(path, 3, (16, 16))).permute(2, 0, 1)
    assert torch.equal(ImageFiles([path], Preprocessing(3, (16, 16), None, None))[0][0], in_memory)
    assert ImageFiles([path], Preprocessing(1, None, None, None))[0][0].shape == (1, 30, 40)


def test_a_class_folder_names_its_split_folders(tmp_path: Path) -> None:
    for split in ("train", "test", "val"):
        _picture(tmp_path / split / "a" / "0.png", (4, 4))
    assert split_folder(tmp_path, "test") == tmp_path / "test"
    assert split_folder(tmp_path, "val") == tmp_path / "val"
    assert split_folder(tmp_path / "train", "test") is None
