"""Uploaded images: checked once on arrival, then kept as files for the one image reader.

An upload is refused with a message the page shows when it is empty, larger
than :data:`MAX_UPLOAD_BYTES`, not an image Pillow can decode, or larger than
:data:`MAX_PIXELS` -- a small file can declare a huge image (a decompression
bomb), so the size is read from the header before any pixel is decoded.
Accepted images are written to a private temporary folder and read back by
:func:`cnnzoo.data.images.read_image`, the reader every command uses, so the
page accepts exactly the pictures ``cnnzoo predict`` accepts. The folder holds
at most :data:`MAX_STORED` images; the oldest go first.
"""

from __future__ import annotations

import io
import secrets
import tempfile
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnzoo.errors import CnnzooError

MAX_UPLOAD_BYTES = 16 * 2**20  # a photograph fits; more is refused before it is read in full
# Pillow warns above 89 megapixels and refuses twice that; a page for looking inside a
# network needs far less, and a 40-megapixel RGB image already decodes to 120 MB.
MAX_PIXELS = 40_000_000
MAX_STORED = 64  # images kept for later requests (each a file of at most MAX_UPLOAD_BYTES)


@dataclass(frozen=True)
class StoredImage:
    """An accepted image: its file, its size and, for segmentation, an optional label mask."""

    path: Path
    name: str  # as uploaded, for the page
    height: int
    width: int
    mask_path: Path | None = None


def check_image_bytes(data: bytes, name: str) -> tuple[str, int, int]:
    """(format, height, width) of an upload, or a :class:`CnnzooError` saying what is wrong."""
    from PIL import Image

    if not data:
        raise CnnzooError(f"{name} is empty (0 bytes); choose an image file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise CnnzooError(upload_too_large(len(data)))
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice that; here a warning is a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                image_format = image.format or "PNG"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CnnzooError(too_many_pixels(name, None)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise CnnzooError(
            f"{name} is not an image cnnzoo can read ({error}); upload a PNG, JPEG, BMP, "
            "GIF, TIFF or WebP file"
        ) from None
    if width * height > MAX_PIXELS:
        raise CnnzooError(too_many_pixels(name, (height, width)))
    return image_format, height, width


def upload_too_large(size: int) -> str:
    return (
        f"the upload ({size / 2**20:.1f} MB) is over the {MAX_UPLOAD_BYTES // 2**20} MB "
        "limit; choose a smaller image"
    )


def too_many_pixels(name: str, size: tuple[int, int] | None) -> str:
    declared = f" declares {size[1]}x{size[0]} pixels and" if size else ""
    return (
        f"{name}{declared} is over the {MAX_PIXELS / 1e6:.0f}-megapixel limit (a decompression "
        "bomb, or a photograph to scale down first); choose a smaller image"
    )


class ImageStore:
    """Accepted images by id, as files in a temporary folder, the oldest dropped beyond a limit."""

    def __init__(self, capacity: int = MAX_STORED) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="cnnzoo-app-")
        self._images: OrderedDict[str, StoredImage] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, data: bytes, name: str) -> tuple[str, StoredImage]:
        """Check ``data`` and keep it; the id names it in later requests."""
        image_format, height, width = check_image_bytes(data, name)
        image_id = secrets.token_hex(8)
        path = Path(self._folder.name) / f"{image_id}.{image_format.lower()}"
        path.write_bytes(data)
        self._read_back(path, name)
        stored = StoredImage(path, name, height, width)
        with self._lock:
            self._images[image_id] = stored
            while len(self._images) > self._capacity:
                _, dropped = self._images.popitem(last=False)
                for file in (dropped.path, dropped.mask_path):
                    if file is not None:
                        file.unlink(missing_ok=True)
        return image_id, stored

    def add_pixels(self, pixels: np.ndarray, name: str) -> tuple[str, StoredImage]:
        """Keep an image given as (H, W, C) uint8 pixels (a sample of a data set)."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(
            buffer, format="PNG"
        )
        return self.add(buffer.getvalue(), name)

    def add_mask(self, image_id: str, data: bytes, name: str) -> StoredImage:
        """Attach a label mask (class indices, one channel) of the same size to an image."""
        from cnnzoo.data.images import read_mask

        stored = self.get(image_id)
        _, height, width = check_image_bytes(data, name)
        if (height, width) != (stored.height, stored.width):
            raise CnnzooError(
                f"the mask is {width}x{height} but the image is {stored.width}x{stored.height}; "
                "upload the mask that belongs to this image"
            )
        path = stored.path.with_name(f"{stored.path.stem}-mask.png")
        path.write_bytes(data)
        read_mask(path)  # refuses colour images and names the modes a mask may have
        with_mask = StoredImage(stored.path, stored.name, height, width, path)
        with self._lock:
            self._images[image_id] = with_mask
        return with_mask

    def get(self, image_id: str) -> StoredImage:
        with self._lock:
            stored = self._images.get(image_id)
        if stored is None:
            raise CnnzooError("that image is no longer held by the server; upload it again")
        return stored

    @staticmethod
    def _read_back(path: Path, name: str) -> None:
        """Decode once through the shared reader, so a truncated file is refused now."""
        from cnnzoo.data.images import read_image

        try:
            read_image(path)
        except CnnzooError:
            path.unlink(missing_ok=True)
            raise CnnzooError(
                f"{name} could not be decoded (truncated or corrupt); choose another image"
            ) from None
