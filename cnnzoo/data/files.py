"""Image files named on the command line, and each prepared as evaluation prepares it.

``cnnzoo predict RUN PATH...`` takes files, folders (searched recursively)
and glob patterns. A shell expands an unquoted ``*.jpg`` itself, but a quoted
one, or one on a system whose shell does not, arrives as the pattern, so
:func:`find_images` expands patterns too (``**`` reaches into sub-folders).
Files that are not images are set aside by :func:`~cnnzoo.data.images.is_image_file`,
the test every folder listing uses, to be reported rather than fail one by
one later.

:class:`ImageFiles` prepares each file as the run's evaluation prepared its
images (:class:`~cnnzoo.data.preprocessing.Preprocessing`, recorded in the
checkpoint), so a prediction equals ``cnnzoo eval``'s for the same image.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.images import decode_image, is_image_file
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.errors import CnnzooError

# Characters that make a command-line argument a glob pattern rather than a path.
GLOB_CHARACTERS = ("*", "?", "[")


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


class ImageFiles(Dataset):
    """uint8 (C, H, W) images of ``files`` resized as ``preprocessing`` says, with their index.

    The index stands in for a target, so a batch says which files it holds
    once unreadable ones are taken out (:mod:`cnnzoo.data.bad_images`).
    """

    def __init__(self, files: Sequence[Path], preprocessing: Preprocessing) -> None:
        self.files = list(files)
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        recipe = self.preprocessing
        return recipe.resized(decode_image(self.files[index], recipe.channels)), index
