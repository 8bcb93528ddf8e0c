"""Images that are merely different are converted; files no decoder reads are named or skipped.

Every file is written by the test: the modes ImageNet holds (CMYK JPEG,
16-bit and palette PNG, grey among colour, RGBA) and the ways a file breaks
(corrupt, truncated, empty, not an image at all).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from cnnzoo.data import load_data, plain_request
from cnnzoo.data.bad_images import (
    BadImage,
    BadImageLog,
    class_folder_images,
    readable_batches,
    readable_loader,
    scan_headers,
)
from cnnzoo.data.images import UnreadableImage, image_tensor, read_image, to_channels
from cnnzoo.errors import CnnzooError

SIZE = (24, 32)  # (H, W)


def color_pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*SIZE, 3), dtype=np.uint8)


def write_jpeg(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(color_pixels(seed)).save(path, quality=95)
    return path


def truncate_jpeg(path: Path) -> None:
    """Cut the entropy-coded data short: the header still reads, the pixels do not."""
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda") + 30])  # 30 bytes past start-of-scan


def corrupt_jpeg(path: Path) -> None:
    """Zero 50 bytes of the tables after the JPEG signature: a broken data stream."""
    data = path.read_bytes()
    path.write_bytes(data[:3] + bytes(50) + data[53:])


# --- images that are merely different --------------------------------------------------


def test_cmyk_jpeg_becomes_rgb_as_pil_converts_it(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(color_pixels()).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    pixels = read_image(path)
    assert pixels.shape == (*SIZE, 3) and pixels.dtype == np.uint8
    assert np.array_equal(pixels, np.asarray(Image.open(path).convert("RGB")))
    assert np.abs(pixels.astype(int) - color_pixels()).mean() < 20  # the colours survive


@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_png_is_scaled_to_eight_bits_not_clipped(tmp_path: Path, channels: int) -> None:
    samples = np.linspace(0, 65535, SIZE[0] * SIZE[1]).reshape(SIZE).astype(np.uint16)
    path = tmp_path / "scan.png"
    Image.fromarray(samples).save(path)
    assert Image.open(path).mode == "I;16"
    pixels = read_image(path, channels)
    assert pixels.shape == (*SIZE, channels) and pixels.dtype == np.uint8
    expected = np.round(samples.astype(np.float64) * 255 / 65535)
    assert np.abs(pixels[..., 0] - expected).max() <= 0.5
    # PIL's own conversion would clip: every sample above 255 turns white.
    assert (np.asarray(Image.open(path).convert("L")) == 255).mean() > 0.9
    assert 0.45 < (pixels < 128).mean() < 0.55


def test_thirty_two_bit_integer_images_are_read_as_sixteen_bit(tmp_path: Path) -> None:
    samples = np.full(SIZE, 32896, dtype=np.int32)  # half of 65535, rounded up
    path = tmp_path / "scan.tif"
    Image.fromarray(samples).save(path)
    assert Image.open(path).mode == "I"
    assert np.all(read_image(path) == 128)


def test_palette_png_with_transparency_converts_without_warning(tmp_path: Path) -> None:
    """PIL warns when such a palette goes straight to RGB, and asks for RGBA first."""
    path = tmp_path / "palette.png"
    palette = Image.fromarray(color_pixels()).convert("P")
    palette.save(path, transparency=bytes(range(256)))  # an alpha per palette entry, as tRNS
    with Image.open(path) as opened:
        assert opened.mode == "P" and isinstance(opened.info["transparency"], bytes)
        expected = np.asarray(opened.convert("RGBA"))[..., :3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels = read_image(path)
    assert pixels.shape == (*SIZE, 3) and pixels.dtype == np.uint8
    assert np.array_equal(pixels, expected)


def test_gray_image_in_a_color_set_repeats_its_channel(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    gray = color_pixels()[..., 0]
    Image.fromarray(gray).save(path)
    pixels = read_image(path, channels=3)
    assert pixels.shape == (*SIZE, 3) and pixels.dtype == np.uint8
    for channel in range(3):
        assert np.array_equal(pixels[..., channel], gray)


def test_rgba_drops_alpha_and_keeps_the_colors(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    rgba = np.dstack([color_pixels(), np.full(SIZE, 7, np.uint8)])
    Image.fromarray(rgba).save(path)
    pixels = read_image(path)
    assert pixels.shape == (*SIZE, 3) and np.array_equal(pixels, color_pixels())
    assert image_tensor(pixels).shape == (3, *SIZE)


def test_to_channels_leaves_an_image_of_the_right_mode_alone() -> None:
    image = Image.fromarray(color_pixels())
    assert to_channels(image, 3) is image
    assert to_channels(image, 1).mode == "L"


# --- what cannot be read ------------------------------------------------------------------

BROKEN = {
    "corrupt": lambda path: corrupt_jpeg(write_jpeg(path)),
    "truncated": lambda path: truncate_jpeg(write_jpeg(path)),
    "zero-byte": lambda path: path.write_bytes(b""),
    "text": lambda path: path.write_text("<html>404 Not Found</html>"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_file_that_cannot_be_decoded_is_named_in_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.jpg"
    BROKEN[kind](path)
    with pytest.raises(UnreadableImage) as raised:
        read_image(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message and "remove or replace" in message
    assert raised.value.path == path and isinstance(raised.value, CnnzooError)


@pytest.mark.parametrize("kind", ["zero-byte", "text"])
def test_the_header_scan_names_files_that_are_no_images(tmp_path: Path, kind: str) -> None:
    good, bad = write_jpeg(tmp_path / "good.jpg"), tmp_path / f"{kind}.jpg"
    BROKEN[kind](bad)
    with pytest.raises(CnnzooError, match=f"{bad}.*--skip-bad-images"):
        scan_headers([good, bad], BadImageLog())
    skipping = BadImageLog(skip=True)
    assert scan_headers([good, bad], skipping) == [good]
    assert [image.path for image in skipping.skipped] == [str(bad)]


def test_the_header_scan_passes_a_truncated_jpeg_whose_header_is_whole(tmp_path: Path) -> None:
    """Its pixels are read, and found broken, only when it is decoded for training."""
    path = tmp_path / "truncated.jpg"
    BROKEN["truncated"](path)
    assert scan_headers([path], BadImageLog()) == [path]


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    for name in ("cat", "dog"):
        write_jpeg(tmp_path / name / "0.jpg")
    (tmp_path / "fox").mkdir()
    with pytest.raises(CnnzooError, match=r"class folder .*fox holds no images.*remove the folder"):
        load_data(f"folder:{tmp_path}", plain_request())
    with pytest.raises(CnnzooError, match="fox"):
        class_folder_images(tmp_path / "fox")


# --- in-memory class folders: skip and record, or stop -------------------------------------


def class_folders_with_a_truncated_file(root: Path) -> Path:
    for index in range(8):
        write_jpeg(root / ("cat" if index % 2 else "dog") / f"{index}.jpg", seed=index)
    bad = root / "cat" / "1.jpg"
    truncate_jpeg(bad)
    return bad


def test_class_folders_stop_at_a_file_they_cannot_decode(tmp_path: Path) -> None:
    bad = class_folders_with_a_truncated_file(tmp_path)
    with pytest.raises(CnnzooError, match=f"cannot read image {bad}.*--skip-bad-images"):
        load_data(f"folder:{tmp_path}", plain_request())


def test_class_folders_skip_and_record_a_file_they_cannot_decode(tmp_path: Path) -> None:
    bad = class_folders_with_a_truncated_file(tmp_path)
    splits = load_data(f"folder:{tmp_path}", plain_request(skip_bad_images=True))
    assert len(splits.train) + len(splits.val) == 7
    assert [image.path for image in splits.skipped_images] == [str(bad)]
    assert "truncated" in splits.skipped_images[0].reason


# --- per-sample splits: a marker from the worker, a batch without it -----------------------


class JpegFiles(Dataset):
    """One JPEG per sample, decoded when asked for, as a streaming split reads."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return image_tensor(read_image(self.files[index])), index


def files_with_truncated(root: Path, bad_indices: tuple[int, ...]) -> list[Path]:
    files = [write_jpeg(root / f"{index}.jpg", seed=index) for index in range(6)]
    for index in bad_indices:
        truncate_jpeg(files[index])
    return files


@pytest.mark.parametrize("workers", [0, 2])
def test_a_batch_is_served_without_the_file_that_failed(tmp_path: Path, workers: int) -> None:
    files = files_with_truncated(tmp_path, (4,))
    log = BadImageLog(skip=True)
    loader = readable_loader(JpegFiles(files), batch_size=3, num_workers=workers)
    batches = list(readable_batches(loader, log, minimum=2))
    assert [targets.tolist() for _, targets in batches] == [[0, 1, 2], [3, 5]]
    assert batches[1][0].shape == (2, 3, *SIZE)
    assert log.skipped == [BadImage(str(files[4]), log.skipped[0].reason)]


@pytest.mark.parametrize("workers", [0, 2])
def test_without_skipping_the_worker_error_becomes_one_line(tmp_path: Path, workers: int) -> None:
    files = files_with_truncated(tmp_path, (4,))
    loader = readable_loader(JpegFiles(files), batch_size=3, num_workers=workers)
    with pytest.raises(CnnzooError) as raised:
        list(readable_batches(loader, BadImageLog(), minimum=2))
    message = str(raised.value)
    assert message.startswith(f"cannot read image {files[4]}") and "\n" not in message
    assert "Traceback" not in message


def test_a_training_batch_left_with_one_image_stops(tmp_path: Path) -> None:
    files = files_with_truncated(tmp_path, (4, 5))
    loader = readable_loader(JpegFiles(files), batch_size=3)
    log = BadImageLog(skip=True)
    with pytest.raises(CnnzooError, match="only 1 image.*a step needs two"):
        list(readable_batches(loader, log, minimum=2))
    assert len(log.skipped) == 2  # recorded before stopping


def test_an_evaluation_batch_that_lost_every_image_is_passed_over(tmp_path: Path) -> None:
    files = files_with_truncated(tmp_path, (3, 4, 5))
    log = BadImageLog(skip=True)
    loader = readable_loader(JpegFiles(files), batch_size=3)
    assert [t.tolist() for _, t in readable_batches(loader, log)] == [[0, 1, 2]]
    assert [image.path for image in log.skipped] == [str(files[i]) for i in (3, 4, 5)]


def test_segmentation_folders_skip_an_image_that_fails_in_a_worker(tmp_path: Path) -> None:
    for index in range(6):
        write_jpeg(tmp_path / "images" / f"{index}.jpg", seed=index)
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(np.zeros(SIZE, np.uint8)).save(tmp_path / "masks" / f"{index}.png")
    truncate_jpeg(tmp_path / "images" / "2.jpg")
    splits = load_data(f"folder:{tmp_path / 'images'},{tmp_path / 'masks'}", plain_request())
    every_pair = splits.train.pairs + splits.val.pairs
    assert len(every_pair) == 6  # the header scan let the truncated file through
    log = BadImageLog(skip=True)
    loader = readable_loader(splits.train, batch_size=8, num_workers=2)
    (images, masks), *_ = list(readable_batches(loader, log))
    assert images.shape[0] == len(splits.train) - 1 and masks.shape[0] == images.shape[0]
    assert [image.path for image in log.skipped] == [str(tmp_path / "images" / "2.jpg")]


def test_class_folders_none_of_which_read_are_named(tmp_path: Path) -> None:
    for index in range(4):
        truncate_jpeg(write_jpeg(tmp_path / ("cat" if index % 2 else "dog") / f"{index}.jpg"))
    with pytest.raises(CnnzooError, match=f"no image in {tmp_path} could be read"):
        load_data(f"folder:{tmp_path}", plain_request(skip_bad_images=True))
