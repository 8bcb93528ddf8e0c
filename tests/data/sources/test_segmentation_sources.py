"""Segmentation data sources on format-exact fake CamVid and VOC trees, image/mask folders
and the real ISBI slices; mistakes in a user's files named in the message."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cnnzoo.data import list_datasets, load_data, plain_request
from cnnzoo.data.protocol import SegmentationSplit
from cnnzoo.data.sources.camvid import CAMVID_CLASSES
from cnnzoo.data.sources.voc import VOC_CLASSES
from cnnzoo.errors import CnnzooError


def _save(array: np.ndarray, path: Path, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8), mode="P" if palette else None)
    if palette:
        image.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    image.save(path)


def _blocks(
    rng: np.random.Generator, shape: tuple[int, int], values: int, block: int = 8
) -> np.ndarray:
    """A label map of square blocks of random values below ``values``."""
    coarse = rng.integers(0, values, (shape[0] // block + 1, shape[1] // block + 1))
    return np.kron(coarse, np.ones((block, block), int))[: shape[0], : shape[1]]


def _check_items(dataset, in_channels: int, num_classes: int, void: int | None) -> None:
    image, mask = dataset[0]
    assert image.dtype == torch.float32 and image.shape[0] == in_channels
    assert image.min() >= 0 and image.max() <= 1
    assert mask.dtype == torch.int64 and mask.shape == image.shape[1:]
    labels = set(mask.unique().tolist()) - {void}
    assert labels and max(labels) < num_classes


# ----------------------------------------------------------------------------- seg-folder


def _folder(tmp_path: Path, masks: dict[str, np.ndarray], sizes: dict | None = None) -> str:
    rng = np.random.default_rng(0)
    for name, mask in masks.items():
        shape = (sizes or {}).get(name, mask.shape)
        _save(rng.integers(0, 255, (*shape, 3)), tmp_path / "images" / f"{name}.jpg")
        _save(mask, tmp_path / "masks" / f"{name}.png")
    return f"seg-folder:{tmp_path / 'images'},{tmp_path / 'masks'}"


def test_folder_of_binary_masks(tmp_path: Path) -> None:
    masks = {
        f"cell{i}": np.where(_blocks(np.random.default_rng(i), (24, 32), 2), 255, 0)
        for i in range(5)
    }
    spec = _folder(tmp_path, masks)
    splits = load_data(spec, plain_request(augment="none"))
    # folder:IMAGES,MASKS (two folders) is the same source as seg-folder:IMAGES,MASKS.
    alias = load_data(spec.replace("seg-folder:", "folder:"), plain_request(augment="none"))
    assert alias.task == "segmentation" and len(alias.train) == len(splits.train)
    assert splits.class_names == ["background", "foreground"]
    assert (len(splits.train), len(splits.val)) == (4, 1)
    _check_items(splits.train, 3, 2, 255)
    assert set(splits.train[0][1].unique().tolist()) <= {0, 1}


def test_folder_of_class_index_masks_with_different_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = {f"im{i}": _blocks(rng, (16 + 8 * i, 24), 5) for i in range(5)}
    masks["im0"][0, 0] = 255  # void
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "classes.txt").write_text("a\nb\nc\nd\ne\n")
    splits = load_data(_folder(tmp_path, masks), plain_request(in_channels=1, augment="none"))
    assert splits.class_names == ["a", "b", "c", "d", "e"] and splits.ignore_index == 255
    _check_items(splits.val, 1, 5, 255)
    # Evaluation pads to the largest image with the void label, so the images batch.
    images, labels = next(iter(DataLoader(splits.val, batch_size=1)))
    assert images.shape[-2:] == (48, 24) and labels.shape[-2:] == (48, 24)
    images, labels = next(iter(DataLoader(splits.train, batch_size=4)))
    assert images.shape == (4, 1, 48, 24)


def test_folder_mask_value_beyond_the_classes_names_file_and_value(tmp_path: Path) -> None:
    masks = {"a": np.zeros((8, 8)), "b": np.full((8, 8), 3)}
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "classes.txt").write_text("sky\nroad\ncar\n")
    with pytest.raises(CnnzooError, match=r"mask .*b\.png has label value 3, but there are 3"):
        load_data(_folder(tmp_path, masks))


def test_folder_size_mismatch_names_the_file(tmp_path: Path) -> None:
    masks = {"a": np.zeros((8, 8)), "b": np.ones((8, 8))}
    with pytest.raises(CnnzooError, match=r"mask .*b\.png is 8x8 but its image .*b\.jpg is 9x8"):
        load_data(_folder(tmp_path, masks, sizes={"b": (8, 9)}))


def test_folder_unreadable_files_stop_the_scan_by_name_or_are_skipped(tmp_path: Path) -> None:
    masks = {f"p{i}": np.full((8, 8), i % 2) for i in range(5)}
    spec = _folder(tmp_path, masks)
    bad_mask, bad_image = tmp_path / "masks" / "p1.png", tmp_path / "images" / "p3.jpg"
    bad_mask.write_text("<html>not found</html>")
    bad_image.write_bytes(b"")
    with pytest.raises(CnnzooError) as stopped:
        load_data(spec)
    message = str(stopped.value)
    assert message.startswith(f"cannot read mask {bad_mask}") and "\n" not in message
    assert "--skip-bad-images" in message
    splits = load_data(spec, plain_request(skip_bad_images=True))
    assert [bad.path for bad in splits.skipped_images] == [str(bad_image), str(bad_mask)]
    kept = [image.stem for image, _ in splits.train.pairs + splits.val.pairs]
    assert sorted(kept) == ["p0", "p2", "p4"]
    # Two pairs are the fewest a folder trains and validates on.
    for name in ("p0", "p2"):
        (tmp_path / "masks" / f"{name}.png").write_bytes(b"")
    with pytest.raises(CnnzooError, match="only 1 image/mask pair"):
        load_data(spec, plain_request(skip_bad_images=True))


def test_folder_unmatched_names_are_listed(tmp_path: Path) -> None:
    spec = _folder(tmp_path, {"a": np.zeros((8, 8)), "b": np.ones((8, 8))})
    (tmp_path / "masks" / "b.png").rename(tmp_path / "masks" / "c.png")
    with pytest.raises(CnnzooError, match="b.jpg has no mask .*c.png has no image"):
        load_data(spec)


def test_folder_rgb_mask_and_bad_argument(tmp_path: Path) -> None:
    spec = _folder(tmp_path, {"a": np.zeros((8, 8)), "b": np.zeros((8, 8))})
    _save(np.zeros((8, 8, 3)), tmp_path / "masks" / "b.png")
    with pytest.raises(CnnzooError, match=r"b\.png is a RGB image; save masks as single-channel"):
        load_data(spec)
    with pytest.raises(CnnzooError, match="seg-folder:IMAGES,MASKS"):
        load_data(f"seg-folder:{tmp_path}")


# ----------------------------------------------------------------------------- CamVid


def _camvid(root: Path, counts: dict[str, int], size: tuple[int, int] = (36, 48)) -> None:
    """SegNet's layout, with list files holding the tutorial's absolute paths."""
    rng = np.random.default_rng(0)
    for split, count in counts.items():
        lines = []
        for index in range(count):
            name = f"0001TP_{index:06d}.png"
            _save(rng.integers(0, 255, (*size, 3)), root / split / name)
            _save(_blocks(rng, size, 12), root / f"{split}annot" / name)  # 0-10 classes, 11 void
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def test_camvid_layout(tmp_path: Path) -> None:
    _camvid(tmp_path / "CamVid", {"train": 3, "val": 2, "test": 2})
    splits = load_data("camvid", plain_request(data_dir=tmp_path, image_size=(24, 24)))
    assert splits.class_names == CAMVID_CLASSES and len(CAMVID_CLASSES) == 11
    assert splits.ignore_index == 11
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3, 2, 2)
    _check_items(splits.train, 3, 11, 11)
    assert splits.train[0][0].shape == (3, 24, 24) and splits.test[0][0].shape == (3, 36, 48)
    masks = list(splits.train.iter_masks())
    assert len(masks) == 3 and masks[0].max() <= 11


def test_camvid_label_beyond_void_is_named(tmp_path: Path) -> None:
    _camvid(tmp_path, {"train": 2, "val": 1, "test": 1})
    _save(np.full((36, 48), 12), tmp_path / "valannot" / "0001TP_000000.png")
    with pytest.raises(CnnzooError, match=r"valannot/0001TP_000000\.png has label value 12"):
        load_data(f"camvid:{tmp_path}")


def test_camvid_unreadable_files_stop_the_scan_by_name_or_are_skipped(tmp_path: Path) -> None:
    _camvid(tmp_path, {"train": 3, "val": 2, "test": 1})
    bad_mask = tmp_path / "trainannot" / "0001TP_000001.png"
    bad_mask.write_bytes(bad_mask.read_bytes()[:60])  # a PNG cut short in its pixel data
    with pytest.raises(CnnzooError, match=f"cannot read mask {bad_mask}.*--skip-bad-images"):
        load_data(f"camvid:{tmp_path}")
    splits = load_data(f"camvid:{tmp_path}", plain_request(skip_bad_images=True))
    assert [bad.path for bad in splits.skipped_images] == [str(bad_mask)]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (2, 2, 1)
    assert all(mask != bad_mask for _, mask in splits.train.pairs)
    (tmp_path / "test" / "0001TP_000000.png").write_text("not an image")
    with pytest.raises(CnnzooError, match="split 'test' .* is empty once its unreadable files"):
        load_data(f"camvid:{tmp_path}", plain_request(skip_bad_images=True))


def test_camvid_list_naming_a_missing_file(tmp_path: Path) -> None:
    _camvid(tmp_path, {"train": 2, "val": 1, "test": 1})
    (tmp_path / "test" / "0001TP_000000.png").unlink()
    with pytest.raises(CnnzooError, match=r"test\.txt line 1 names .*0001TP_000000\.png"):
        load_data(f"camvid:{tmp_path}")


# ----------------------------------------------------------------------------- VOC


def _voc(root: Path, names: dict[str, list[str]]) -> None:
    """VOCdevkit/VOC2012 with JPEG images, palette PNG masks (255 borders) and split lists."""
    rng = np.random.default_rng(0)
    voc = root / "VOCdevkit" / "VOC2012"
    for split, ids in names.items():
        for index, name in enumerate(ids):
            size = (30 + 4 * index, 40)
            _save(rng.integers(0, 255, (*size, 3)), voc / "JPEGImages" / f"{name}.jpg")
            mask = _blocks(rng, size, 21)
            mask[:, 0] = 255
            _save(mask, voc / "SegmentationClass" / f"{name}.png", palette=True)
        lists = voc / "ImageSets" / "Segmentation"
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f"{split}.txt").write_text("\n".join(ids) + "\n")


def test_voc_layout(tmp_path: Path) -> None:
    _voc(tmp_path, {"train": ["2007_000032", "2007_000039"], "val": ["2007_000033"]})
    splits = load_data("voc", plain_request(data_dir=tmp_path, image_size=(32, 32)))
    assert splits.class_names == VOC_CLASSES and splits.ignore_index == 255
    assert (len(splits.train), len(splits.val)) == (2, 1)
    _check_items(splits.train, 3, 21, 255)
    image, mask = splits.val[0]
    assert image.shape == (3, 500, 500) and (mask[30:] == 255).all()  # padded with void
    images, masks = next(iter(DataLoader(splits.train, batch_size=2)))
    assert images.shape == (2, 3, 32, 32)


def test_voc_is_downloaded_only_when_asked(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="VOC 2012 not found .*--download"):
        load_data("voc", plain_request(data_dir=tmp_path))


# ----------------------------------------------------------------------------- ISBI 2012


def test_isbi2012_slices(isbi_dir: Path) -> None:
    splits = load_data(
        "isbi2012", plain_request(data_dir=isbi_dir.parent, in_channels=1, image_size=(128, 128))
    )
    assert splits.class_names == ["membrane", "cell"] and splits.ignore_index is None
    # 16 crops of 128x128 fit in a 512x512 slice: an epoch draws 16 per slice.
    assert (len(splits.train), len(splits.val)) == (24 * 16, 6)
    assert len(list(splits.train.iter_masks())) == 24  # each slice once, for class weights
    image, mask = splits.train[0]
    assert image.shape == (1, 128, 128) and set(mask.unique().tolist()) == {0, 1}
    image, mask = splits.val[0]
    assert image.shape == (1, 512, 512)
    # Cells (255 in the files) are class 1 and cover most of the slice.
    assert 0.6 < mask.float().mean() < 0.9


def test_isbi2012_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="needs images/ and masks/"):
        load_data(f"isbi2012:{tmp_path}")


def test_the_validation_share_of_a_mask_folder_follows_val_fraction(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    spec = _folder(tmp_path, {f"im{i}": _blocks(rng, (8, 8), 2) for i in range(20)})
    sizes = {
        fraction: (len(splits.train), len(splits.val))
        for fraction in (0.1, 0.25, 0.4)
        for splits in [load_data(spec, plain_request(val_fraction=fraction))]
    }
    assert sizes == {0.1: (18, 2), 0.25: (15, 5), 0.4: (12, 8)}  # once 16/4 whatever was asked
    again = load_data(spec, plain_request(val_fraction=0.25))
    assert again.val.pairs == load_data(spec, plain_request(val_fraction=0.25)).val.pairs


# ----------------------------------------------------------------------------- the contract


def _isbi(root: Path) -> None:
    """30 small slices with 0/255 masks in the ISBI 2012 layout."""
    rng = np.random.default_rng(0)
    for index in range(30):
        _save(rng.integers(0, 255, (16, 16)), root / "images" / f"{index:02d}.png")
        _save(
            np.where(_blocks(rng, (16, 16), 2, block=4), 255, 0),
            root / "masks" / f"{index:02d}.png",
        )


def _fake_source(name: str, root: Path) -> str:
    """Format-exact files for the source ``name`` under ``root``; the --data spec reading them."""
    if name == "shapes":
        return "shapes"  # generated, nothing to write
    if name == "seg-folder":
        return _folder(root, {f"im{i}": np.eye(8) for i in range(4)})
    if name == "camvid":
        _camvid(root, {"train": 2, "val": 1, "test": 1})
        return f"camvid:{root}"
    if name == "voc":
        _voc(root, {"train": ["a"], "val": ["b"]})
        return "voc"
    if name == "isbi2012":
        _isbi(root)
        return f"isbi2012:{root}"
    raise AssertionError(f"add fake files for the data source {name!r} to _fake_source")


@pytest.mark.parametrize("name", [entry.name for entry in list_datasets("segmentation")])
def test_every_source_yields_splits_that_meet_the_contract(tmp_path: Path, name: str) -> None:
    spec = _fake_source(name, tmp_path)
    splits = load_data(spec, plain_request(data_dir=tmp_path, in_channels=1, image_size=(8, 8)))
    for split in (splits.train, splits.val, splits.test):
        if split is None:
            continue
        assert isinstance(split, SegmentationSplit)
        assert split.normalization is None and split.batch is None  # [0, 1] items, DataLoader
        first_mask = next(iter(split.iter_masks()))
        assert first_mask.dtype == torch.int64 and first_mask.dim() == 2
        share = split.subset(torch.tensor([0]))
        assert isinstance(share, SegmentationSplit) and len(share) == 1
        if split is not splits.train:  # training crops are drawn at random
            assert torch.equal(share[0][1], split[0][1])


def test_checking_a_mask_folder_shows_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import cnnzoo.progress

    spec = _folder(tmp_path, {"a": np.zeros((8, 8)), "b": np.ones((8, 8))})
    monkeypatch.setattr(cnnzoo.progress, "bars_enabled", lambda: True)  # as on a terminal
    load_data(spec)
    assert "checking masks" in capsys.readouterr().err


def test_camvid_trains_at_its_own_size_and_in_color_by_default(tmp_path: Path) -> None:
    """Not U-Net's 1x572x572: the data's 3 channels and (H, W), recorded in metrics.json."""
    from cnnzoo.runs.config import TrainConfig
    from cnnzoo.train.trainer import train

    _camvid(tmp_path / "camvid", {"train": 2, "val": 1, "test": 1}, size=(36, 52))
    config = TrainConfig(
        model="unet", data=f"camvid:{tmp_path / 'camvid'}", model_options={"width": 4},
        iterations=1, batch_size=2, out=str(tmp_path / "run"), quiet=True, plots=False,
    )  # fmt: skip
    result = train(config)
    assert result.metrics["image_size"] == [36, 52]
    assert result.model.in_channels == 3
    asked = train(replace(config, image_size=[40, 48], in_channels=1, iterations=1), force=True)
    assert asked.metrics["image_size"] == [40, 48] and asked.model.in_channels == 1


def test_unset_channels_are_the_sets_own(tmp_path: Path, isbi_dir: Path) -> None:
    _camvid(tmp_path, {"train": 2, "val": 1, "test": 1})
    color = load_data(f"camvid:{tmp_path}", plain_request(in_channels=None))
    gray = load_data(f"camvid:{tmp_path}", plain_request(in_channels=1))
    assert color.train[0][0].shape[0] == 3 and gray.train[0][0].shape[0] == 1
    shapes = load_data("shapes", plain_request(in_channels=None, image_size=(16, 16)))
    assert shapes.train[0][0].shape == (3, 16, 16)
    electron_microscopy = load_data(f"isbi2012:{isbi_dir}", plain_request(in_channels=None))
    assert electron_microscopy.train[0][0].shape[0] == 1
