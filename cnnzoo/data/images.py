"""The one place image files are found and decoded: class folders, mask folders and ``predict``.

Every path from a file on disk to pixels goes through :func:`read_image` (and
:func:`read_mask` for label masks), and every folder is listed by
:func:`list_images` against the one :data:`IMAGE_EXTENSIONS`. Written once, a
picture that one command accepts is accepted by all of them (a ``.webp``
image once worked in class folders and was silently skipped in mask folders),
a broken file is reported the same way everywhere, and a faster decoder
(libjpeg-turbo, JPEG draft mode for a known ``size``) changes one function.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cnnzoo.errors import CnnzooError

# Every format Pillow decodes that holds photographs or label maps, in lower case.
IMAGE_EXTENSIONS = (
    ".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp",
)  # fmt: skip

# Pillow's modes of grey pictures (with or without alpha, 8 to 32 bits).
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")

# Pillow's modes that hold one value per pixel: the ones a label mask may have.
MASK_MODES = ("1", "L", "P", "I", "I;16")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (case aside)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    return sorted(path for path in folder.iterdir() if is_image_file(path) and path.is_file())


@contextmanager
def _opened(path: Path, what: str) -> Iterator[Image.Image]:
    """The file opened by Pillow; any failure to decode it becomes a message naming the file.

    Pillow decodes lazily, so truncated or corrupt data surfaces in the body
    of the ``with`` block (``convert``, ``np.asarray``), not at ``open``: the
    whole block is guarded.
    """
    try:
        with Image.open(path) as image:
            yield image
    except CnnzooError:
        raise
    except FileNotFoundError:
        raise CnnzooError(f"{what} {path} does not exist") from None
    # Pillow reports bad data as OSError (UnidentifiedImageError, "truncated"), and
    # some decoders as SyntaxError, ValueError or EOFError.
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise CnnzooError(
            f"cannot read {what} {path}: {error}; remove or replace the file"
        ) from None


def read_image(path: Path, channels: int = 3, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, C) uint8 pixels of an image file: grey (C = 1) when ``channels`` is 1, else RGB.

    A network with other channel counts gets RGB and converts it itself.
    ``size`` (H, W) resizes bilinearly, as a class folder needs every image
    at one size; None keeps the file's own size.
    """
    with _opened(path, "image") as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None and (image.height, image.width) != tuple(size):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        pixels = np.array(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1)


def image_tensor(pixels: np.ndarray) -> Tensor:
    """A (C, H, W) float image in [0, 1] from (H, W, C) uint8 pixels, as a network takes it."""
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)


def read_image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, read from its header without decoding the pixels."""
    with _opened(path, "image") as image:
        width, height = image.size
    return height, width


def read_image_channels(path: Path) -> int:
    """1 for a grey image file, 3 for any other (colour, palette, CMYK), read from its header.

    A data set takes the channels of its first image, so that the odd grey
    photograph in a colour set is converted rather than changing the network.
    """
    with _opened(path, "image") as image:
        return 1 if image.mode in GREY_MODES else 3


def read_mask(path: Path) -> np.ndarray:
    """(H, W) label values of a single-channel mask (modes 1, L, P, I, I;16)."""
    with _opened(path, "mask") as mask:
        if mask.mode not in MASK_MODES:
            raise CnnzooError(
                f"mask {path} is a {mask.mode} image; save masks as single-channel PNGs "
                "of class indices (mode L or P)"
            )
        return np.asarray(mask)
