"""Image files named on the command line, and each prepared as evaluation prepares it.

``cnnzoo predict RUN PATH...`` takes files, folders (searched recursively)
and glob patterns. A shell expands an unquoted ``*.jpg`` itself, but a quoted
one, or one on a system whose shell does not, arrives as the pattern, so
:func:`find_images` expands patterns too (``**`` reaches into sub-folders).
Files that are not images are set aside by :func:`~cnnzoo.data.images.is_image_file`,
the test every folder listing uses, to be reported rather than fail one by
one later.

:class:`ImageFiles` prepares each file with the data pipeline's own
evaluation steps, so a prediction equals ``cnnzoo eval``'s for the same
image: the decoder of :func:`~cnnzoo.data.images.decode_image`, then either
the centre crop of a streamed folder (:func:`~cnnzoo.data.streaming.centre_box`,
the run's ``crop_ratio``) or, for a folder held in memory, the whole image
resized as :func:`~cnnzoo.data.images.read_image` does.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.images import crop_and_resize, decode_image, is_image_file, list_images
from cnnzoo.data.streaming import centre_box
from cnnzoo.errors import CnnzooError

# Characters that make a command-line argument a glob pattern rather than a path.
GLOB_CHARACTERS = ("*", "?", "[")
# The names a validation folder may have under folder:PATH (cnnzoo.data.classification).
VAL_FOLDERS = ("val", "valid", "validation")


@dataclass(frozen=True)
class FoundFiles:
    """The image files found, in order and each once, and the other files set aside."""

    images: list[Path]
    others: list[Path]

    def skipped_line(self) -> str:
        """One line naming how many files were not images and the first few of them."""
        return f"skipped {len(self.others)} file(s) that are not images: {first_few(self.others)}"


def first_few(paths: Sequence[str | Path], shown: int = 3) -> str:
    """The first ``shown`` of ``paths``, comma-separated, with "..." where there are more."""
    return ", ".join(str(path) for path in paths[:shown]) + (", ..." if len(paths) > shown else "")


def find_images(inputs: Sequence[str | Path]) -> FoundFiles:
    """Every file under ``inputs`` (files, folders searched recursively, glob patterns).

    A path that does not exist, or a pattern that matches nothing, is an
    error naming it; so is finding no image file at all.
    """
    found: dict[Path, None] = {}  # ordered, without repeats
    for given in inputs:
        for path in _expand(str(given)):
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            found.update(dict.fromkeys(files))
    images = [path for path in found if is_image_file(path)]
    others = [path for path in found if not is_image_file(path)]
    if not images:
        where = ", ".join(str(given) for given in inputs)
        raise CnnzooError(
            f"no image files in {where} (found {len(others)} other file(s)); "
            "give image files, folders of them or patterns such as 'photos/*.jpg'"
        )
    return FoundFiles(images, others)


def _expand(given: str) -> list[Path]:
    path = Path(given).expanduser()
    if path.exists():
        return [path]
    if any(character in given for character in GLOB_CHARACTERS):
        matches = sorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise CnnzooError(f"{given} matches no file; check the pattern")
        return [Path(match) for match in matches]
    raise CnnzooError(f"{given} does not exist; give image files, folders or glob patterns")


def unique_stems(paths: Sequence[Path]) -> list[str]:
    """A file-name stem per path, made unique with its folders where two stems coincide.

    Images from class folders (``cat/001.jpg``, ``dog/001.jpg``) would
    otherwise write their masks over each other.
    """
    stems = [path.stem for path in paths]
    repeated = {stem for stem in stems if stems.count(stem) > 1}
    return [
        "_".join([*path.parent.parts[-2:], path.stem]).replace(":", "")
        if path.stem in repeated
        else path.stem
        for path in paths
    ]


@dataclass(frozen=True)
class Preparation:
    """How a file becomes the network's uint8 input, as evaluation of the run prepares it."""

    channels: int  # 1 grey, 3 colour
    size: tuple[int, int] | None  # (H, W); None keeps each image's own size (segmentation)
    crop_ratio: float | None = None  # a streamed folder's centre crop; None: the whole image


class ImageFiles(Dataset):
    """uint8 (C, H, W) images of ``files`` prepared by ``preparation``, with their index.

    The index stands in for a target, so a batch says which files it holds
    once unreadable ones are taken out (:mod:`cnnzoo.data.bad_images`).
    """

    def __init__(self, files: Sequence[Path], preparation: Preparation) -> None:
        self.files = list(files)
        self.preparation = preparation

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        recipe = self.preparation
        pixels = decode_image(self.files[index], recipe.channels)
        if recipe.size is None:
            return pixels, index
        height, width = pixels.shape[-2:]
        box = (
            centre_box(height, width, recipe.size, recipe.crop_ratio)
            if recipe.crop_ratio is not None
            else (0, 0, height, width)
        )
        return crop_and_resize(pixels, box, recipe.size), index


def class_folder_count(root: Path) -> int:
    """Image files ``folder:ROOT`` lists for a run (ROOT, or ROOT/train with val and test).

    With the run's size and channels this gives the decoded bytes that made
    the folder stream from disk or be held in memory
    (:func:`~cnnzoo.data.streaming.choose_mode`), so a prediction can be
    prepared the way that run's evaluation was, without decoding the folder.
    """
    train = root / "train" if (root / "train").is_dir() else root
    val, test = split_folder(root, "val"), split_folder(root, "test")
    classes = [d.name for d in train.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return sum(
        len(list_images(split / name))
        for split in (train, val, test)
        if split is not None
        for name in classes
        if (split / name).is_dir()
    )


def split_folder(root: Path, split: str) -> Path | None:
    """The folder of ``split`` ("test" or "val") under ``folder:ROOT``, where it has its own."""
    train = root / "train" if (root / "train").is_dir() else root
    if split == "test":
        return root / "test" if (root / "test").is_dir() and train != root else None
    return next((root / n for n in VAL_FOLDERS if (root / n).is_dir()), None)
