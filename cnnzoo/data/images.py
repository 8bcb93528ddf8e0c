"""The one place image files are found and decoded: class folders, mask folders and ``predict``.

Every path from a file on disk to pixels goes through :func:`read_image` (and
:func:`read_mask` for label masks), and every folder is listed by
:func:`list_images` against the one :data:`IMAGE_EXTENSIONS`. Written once, a
picture that one command accepts is accepted by all of them (a ``.webp``
image once worked in class folders and was silently skipped in mask folders),
a broken file is reported the same way everywhere, and a faster decoder
(libjpeg-turbo, JPEG draft mode for a known ``size``) changes one function.

Images that are merely different are converted as torchvision's loaders
convert them (PIL's ``convert("RGB")``), in :func:`to_channels`: CMYK, palette
(with or without transparency), grey in a colour set, RGBA; 16-bit images
(medical scans, some ImageNet PNGs) are scaled to 8 bits where PIL would clip
them. A file that cannot be decoded raises :class:`UnreadableImage`, which
names it; :mod:`cnnzoo.data.bad_images` decides whether a run stops or skips it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms.v2.functional import resize

from cnnzoo.errors import CnnzooError

# Every format Pillow decodes that holds photographs or label maps, in lower case.
IMAGE_EXTENSIONS = (
    ".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp",
)  # fmt: skip

# Files libjpeg-turbo decodes (through torchvision.io) faster than Pillow.
JPEG_EXTENSIONS = (".jpeg", ".jpg")
# Pillow's modes of grey pictures (with or without alpha, 8 to 32 bits).
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")

# Pillow's modes that hold one value per pixel: the ones a label mask may have.
MASK_MODES = ("1", "L", "P", "I", "I;16")

# Pillow's modes of 16-bit samples (PNG, TIFF); a 16-bit PNG may also open as 32-bit "I".
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
SIXTEEN_BIT_MAX = 65535


class UnreadableImage(CnnzooError):
    """A file that exists but cannot be decoded; ``path`` names it, so a run can skip it."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = Path(path)

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # Crosses process boundaries (DataLoader workers) with its path.
        return type(self), (self.path, str(self))


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
        raise UnreadableImage(
            path,
            f"cannot read {what} {path}: {error or type(error).__name__}; "
            "remove or replace the file",
        ) from None


def read_image(path: Path, channels: int = 3, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, C) uint8 pixels of an image file: grey (C = 1) when ``channels`` is 1, else RGB.

    A network with other channel counts gets RGB and converts it itself.
    ``size`` (H, W) resizes bilinearly, as a class folder needs every image
    at one size; None keeps the file's own size.
    """
    pixels = decode_image(path, channels)
    if size is not None:
        pixels = crop_and_resize(pixels, (0, 0, pixels.shape[1], pixels.shape[2]), size)
    return pixels.permute(1, 2, 0).numpy()


def decode_image(path: Path, channels: int = 3) -> Tensor:
    """(C, H, W) uint8 pixels of an image file, decoded by the fastest decoder measured.

    JPEG files go to libjpeg-turbo through ``torchvision.io.decode_jpeg``:
    with the crop and resize done on the tensor it took 0.27 ms per 160x160
    image against Pillow's 0.46 ms, and 1.1 against 1.9-2.5 ms at 500x375
    (docs/guide/data.md has the table, Pillow's JPEG draft mode included).
    Every other format, and any JPEG libjpeg-turbo refuses (CMYK, corrupt
    data), is read by Pillow, which converts modes and names a broken file.
    """
    if path.suffix.lower() in JPEG_EXTENSIONS:
        pixels = _decode_jpeg(path, channels)
        if pixels is not None:
            return pixels
    return torch.from_numpy(_read_with_pillow(path, channels)).permute(2, 0, 1)


def crop_and_resize(
    pixels: Tensor, box: tuple[int, int, int, int], size: tuple[int, int]
) -> Tensor:
    """The region ``box`` (top, left, height, width) of (C, H, W) uint8 pixels at ``size``.

    Bilinear with antialiasing, as Pillow resizes, so shrinking does not alias.
    """
    top, left, height, width = box
    region = pixels[:, top : top + height, left : left + width]
    if tuple(region.shape[-2:]) == tuple(size):
        return region.contiguous()
    return resize(region, list(size), antialias=True)


def _decode_jpeg(path: Path, channels: int) -> Tensor | None:
    """libjpeg-turbo's pixels, or None where it cannot give them (Pillow then reads the file)."""
    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    # torchvision 0.29 marks its decoders deprecated in favour of TorchCodec (the same
    # libjpeg-turbo) and warns on every call: once per image would bury real warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return decode_jpeg(read_file(str(path)), mode=mode)
        except RuntimeError:
            return None


def _read_with_pillow(path: Path, channels: int) -> np.ndarray:
    """(H, W, C) uint8 pixels of any format Pillow reads."""
    with _opened(path, "image") as image:
        image = to_channels(image, channels)
        pixels = np.array(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1)


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """``image`` as 8-bit grey (L) when ``channels`` is 1, else 8-bit RGB.

    As torchvision's ``pil_loader`` does, PIL converts every mode: CMYK by its
    naive inversion, a palette through its colours, grey by repeating it,
    RGBA by dropping alpha. Two modes go another way first. 16-bit samples
    are scaled by 255/65535, since PIL's own conversion clips them at 255 and
    turns a whole scan white. A palette with transparency goes through RGBA,
    as Pillow asks (it warns when converted directly); the colours are the same.
    """
    if image.mode in SIXTEEN_BIT_MODES:
        samples = np.asarray(image, dtype=np.int64).clip(0, SIXTEEN_BIT_MAX)
        eight_bit = (samples * 255 + SIXTEEN_BIT_MAX // 2) // SIXTEEN_BIT_MAX
        image = Image.fromarray(eight_bit.astype(np.uint8))  # mode L
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    wanted = "L" if channels == 1 else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


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
        return 1 if image.mode in GRAY_MODES else 3


def read_mask(path: Path) -> np.ndarray:
    """(H, W) label values of a single-channel mask (modes 1, L, P, I, I;16)."""
    with _opened(path, "mask") as mask:
        if mask.mode not in MASK_MODES:
            raise CnnzooError(
                f"mask {path} is a {mask.mode} image; save masks as single-channel PNGs "
                "of class indices (mode L or P)"
            )
        return np.asarray(mask)
