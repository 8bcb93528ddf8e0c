"""Files that cannot be decoded: named in one message, or skipped and recorded.

A data set as large as ImageNet holds a few files no decoder reads: a
truncated download, a zero-byte file, an HTML error page saved as ``.jpg``.
They surface at two moments, and both are handled here, the same way for
every data source.

* **Before training**, a cheap scan: :func:`scan_headers` opens each file
  and reads its header only (PIL's ``Image.open`` parses the header and
  decodes nothing: 0.16-0.28 ms a JPEG here on two cores under a load of 12,
  7 times less than decoding a 160x160 JPEG and 57 times less than a 500x375
  one), so a text file named ``.jpg`` or a zero-byte file is named before
  the first epoch. :func:`class_folder_images` names an empty class folder.
* **During training**, a file whose header is fine but whose data is not (a
  truncated JPEG) fails when a sample is read, often inside a DataLoader
  worker, where an exception would reach the user as a worker traceback.
  :class:`MarkBadImages` catches the reader's :class:`UnreadableImage` for one
  sample and serves a :class:`BadImage` marker instead; :func:`collate_readable`
  batches the other samples and passes the markers on; :func:`readable_batches`,
  in the main process, hands them to the run's :class:`BadImageLog`.

:class:`BadImageLog` is the policy. By default it stops the run with the
reader's one-line message naming the file; with ``skip=True``
(``--skip-bad-images``) it leaves the file out and remembers its path, which
the trainer writes to ``skipped_images.txt`` in the run directory.

Any split that reads one sample at a time uses it the same way; a streaming
split (``folder:PATH`` read from disk) checks its files with
:func:`scan_headers` when it lists them, and builds its loader with
:func:`readable_loader` and iterates it through :func:`readable_batches`::

    files = scan_headers(files, log)
    loader = readable_loader(split, batch_size=64, num_workers=8, persistent_workers=True)
    for images, targets in readable_batches(loader, log, minimum=2):
        ...

In-memory sources, which decode every image at load, catch
:class:`UnreadableImage` there and report it to the same kind of log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, default_collate

from cnnzoo.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    list_images,
    read_image_size,
)
from cnnzoo.errors import CnnzooError


@dataclass(frozen=True)
class BadImage:
    """A file that could not be decoded, and the reader's message about it."""

    path: str
    reason: str


class BadImageLog:
    """What a run does with a file it cannot decode: stop (default), or skip and remember it."""

    def __init__(self, skip: bool = False, found: Iterable[BadImage] = ()) -> None:
        self.skip = skip
        self.found: dict[str, BadImage] = {}
        self.report(found)

    def report(self, bad: Iterable[BadImage]) -> None:
        """Remember ``bad`` when skipping; otherwise stop with a message naming the first."""
        for image in bad:
            if not self.skip:
                raise CnnzooError(
                    f"{image.reason}, or pass --skip-bad-images to leave such files out"
                )
            self.found.setdefault(image.path, image)

    def report_error(self, error: UnreadableImage) -> None:
        """:meth:`report` the file the reader could not decode."""
        self.report([BadImage(str(error.path), str(error))])

    @property
    def skipped(self) -> list[BadImage]:
        """The files left out so far, each once, by path."""
        return [self.found[path] for path in sorted(self.found)]


def scan_headers(files: Sequence[Path], log: BadImageLog) -> list[Path]:
    """The files whose image header reads; the others are reported to ``log``.

    Headers only: a file whose pixel data is damaged passes and is caught
    when it is decoded, by :class:`MarkBadImages`.
    """
    readable = []
    for path in files:
        try:
            read_image_size(path)
        except UnreadableImage as error:
            log.report_error(error)
            continue
        readable.append(path)
    return readable


def class_folder_images(folder: Path) -> list[Path]:
    """The images of one class folder, or a message naming the folder when it has none."""
    images = list_images(folder)
    if not images:
        raise CnnzooError(
            f"class folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
            "add its images or remove the folder"
        )
    return images


class MarkBadImages(Dataset):
    """``dataset``'s samples, with a :class:`BadImage` where a file cannot be decoded.

    Meant for a DataLoader (in its workers as well as in the main process);
    :func:`collate_readable` takes the markers out of each batch.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except UnreadableImage as error:
            return BadImage(str(error.path), str(error))


def collate_readable(samples: list[Any]) -> tuple[Any, Any, list[BadImage]]:
    """(images, targets, markers) of one batch; images and targets are None if none read."""
    bad = [sample for sample in samples if isinstance(sample, BadImage)]
    good = [sample for sample in samples if not isinstance(sample, BadImage)]
    if not good:
        return None, None, bad
    images, targets = default_collate(good)
    return images, targets, bad


def readable_loader(dataset: Dataset, **options: Any) -> DataLoader:
    """A DataLoader over ``dataset`` whose batches :func:`readable_batches` unpacks."""
    return DataLoader(MarkBadImages(dataset), collate_fn=collate_readable, **options)


def readable_batches(
    batches: Iterable[Sequence[Any]], log: BadImageLog, *, minimum: int = 1
) -> Iterator[tuple[Tensor, Tensor]]:
    """(images, targets) of each batch without its unreadable files, which go to ``log``.

    ``minimum`` is the fewest images a batch may keep: 1 in evaluation, where
    an emptied batch is simply passed over; 2 in training, which cannot drop
    a step without shifting its schedule and needs two images for batch
    normalisation, so a training batch left with fewer stops the run.
    """
    for images, targets, bad in batches:
        log.report(bad)
        kept = 0 if images is None else images.shape[0]
        if kept >= minimum:
            yield images, targets
        elif minimum > 1:
            names = ", ".join(image.path for image in bad)
            raise CnnzooError(
                f"only {kept} image(s) of a training batch could be read ({names} could not); "
                "a step needs two: remove or replace the files, or raise --batch-size"
            )


def first_readable_shape(dataset: Dataset) -> torch.Size | None:
    """The shape of the first image of ``dataset`` that decodes (None: none does).

    For probes that need one sample (the input size, an evaluation batch's
    memory): a file that cannot be decoded is passed over here and met again
    where the batches are read, which stops on it or skips it.
    """
    for index in range(len(dataset)):
        try:
            return dataset[index][0].shape
        except UnreadableImage:
            continue
    return None
