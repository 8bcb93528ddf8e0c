"""A run's plan, and the input a network trains on: the data's own channels, and for
segmentation its own size.

A paper's input (U-Net's 1x572x572) applies only when asked for, with
``--image-size paper`` or explicit values; ``--image-size`` takes H,W.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.data import DataRequest, load_data, plain_request
from cnnzoo.data.base import REFERENCE_CROP_RATIO
from cnnzoo.data.batches import batches_per_epoch
from cnnzoo.data.in_memory import Normalization
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import get_model_entry
from cnnzoo.runs import plan
from cnnzoo.runs.config import FIELD_NAMES, TrainConfig, config_from_dict, load_config_file
from cnnzoo.runs.directory import read_last_checkpoint
from cnnzoo.runs.plan import requested_input
from cnnzoo.train.trainer import Trainer


@pytest.mark.parametrize(
    ("given", "stored"),
    [("180,240", [180, 240]), ("224", 224), ("paper", "paper"), (96, 96), ([60, 80], [60, 80])],
)
def test_image_size_takes_h_w_one_side_or_paper(given: object, stored: object) -> None:
    assert config_from_dict({"image_size": given}).image_size == stored


@pytest.mark.parametrize("given", ["big", "1,2,3", [1, 2, 3], "0,5", "papers"])
def test_a_bad_image_size_is_one_line(given: object) -> None:
    with pytest.raises(CnnzooError, match="image_size|image sides"):
        config_from_dict({"image_size": given})


def test_the_flag_takes_h_w() -> None:
    from cnnzoo.cli import build_parser
    from cnnzoo.cli.train import build_config

    args = build_parser().parse_args(["train", "unet", "--image-size", "180,240"])
    assert build_config(args).image_size == [180, 240]


def test_segmentation_asks_for_the_datas_size_and_channels() -> None:
    unet = get_model_entry("unet")
    assert requested_input(TrainConfig(model="unet", data="shapes"), unet) == (None, None)
    paper = TrainConfig(model="unet", data="shapes", image_size="paper")
    assert requested_input(paper, unet) == (None, (572, 572))
    explicit = TrainConfig(model="unet", data="shapes", image_size=[180, 240], in_channels=1)
    assert requested_input(explicit, unet) == (1, (180, 240))


def test_a_classifier_keeps_the_papers_size_but_the_datas_channels() -> None:
    lenet = get_model_entry("lenet5")
    assert requested_input(TrainConfig(), lenet) == (None, (32, 32))
    with pytest.raises(CnnzooError, match="at least 32x32"):
        requested_input(TrainConfig(image_size=[16, 40]), lenet)


def test_scale_crop_is_refused_for_classification() -> None:
    with pytest.raises(CnnzooError, match="scale-crop is for segmentation"):
        requested_input(TrainConfig(augment="scale-crop"), get_model_entry("lenet5"))


def test_pad_crop_is_refused_for_segmentation() -> None:
    config = TrainConfig(model="unet", data="shapes", augment="pad-crop")
    with pytest.raises(CnnzooError, match="pad-crop is for classification"):
        requested_input(config, get_model_entry("unet"))
    assert requested_input(TrainConfig(augment="pad-crop"), get_model_entry("lenet5"))[1]


def test_color_images_train_a_gray_papers_network_in_color(tmp_path: Path) -> None:
    """LeNet-5 took 1 channel; a folder of RGB pictures gives it 3 unless told otherwise."""
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{index}.png")
    config = TrainConfig(
        model="lenet5", data=f"folder:{tmp_path / 'images'}", out=str(tmp_path / "run"),
        val_fraction=0.2, quiet=True,
    )  # fmt: skip
    assert Trainer(config).in_channels == 3
    gray = TrainConfig(**{**config.to_dict(), "in_channels": 1, "out": str(tmp_path / "grey")})
    assert Trainer(gray).in_channels == 1


def test_gray_digits_train_a_color_papers_network_in_gray(tmp_path: Path) -> None:
    config = TrainConfig(
        model="resnet20", data="digits", image_size=8, out=str(tmp_path / "run"), quiet=True
    )
    trainer = Trainer(config)
    assert trainer.in_channels == 1 and trainer.image_size == (8, 8)


# --- the run's plan: one module decides what a run will do -----------------------------------

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "format1-run"


def test_the_data_request_repeats_no_default_of_its_own() -> None:
    """Every shared field comes from the configuration; an unset crop ratio is the plan's."""
    with pytest.raises(TypeError):
        DataRequest()  # type: ignore[call-arg]
    config = TrainConfig(val_fraction=0.2, memory_budget_mb=64, seed=3, workers=2, augment="none")
    asked = plan.request(config).request_data()
    shared = [f.name for f in dataclasses.fields(DataRequest) if f.name in FIELD_NAMES]
    assert len(shared) == 15
    for name in set(shared) - {"data_dir", "image_size", "crop_ratio"}:
        assert getattr(asked, name) == getattr(config, name), name
    assert asked.image_size == (32, 32)  # lenet5's paper input
    assert asked.crop_ratio == REFERENCE_CROP_RATIO
    assert plan.request(TrainConfig(crop_ratio=0.5)).request_data().crop_ratio == 0.5


def test_pretrained_weights_set_the_input_before_any_data_is_read() -> None:
    run = plan.request(TrainConfig(model="resnet50", pretrained="imagenet"))
    assert run.config.image_size == [224, 224] and run.config.in_channels == 3
    asked = run.request_data()
    assert (asked.image_size, asked.in_channels, asked.crop_ratio) == ((224, 224), 3, 224 / 232)
    assert list(run.normalization.mean) == [0.485, 0.456, 0.406]


def test_the_options_pretrained_weights_switch_on_are_in_the_recipe_from_the_start() -> None:
    run = plan.request(TrainConfig(model="googlenet", pretrained="torchvision"))
    assert run.config.model_options == {"transform_input": True}
    assert plan.request(TrainConfig(model="googlenet")).config.model_options == {}


def test_a_module_handed_over_cannot_take_pretrained_weights_or_resume() -> None:
    with pytest.raises(CnnzooError, match="--pretrained needs a registered network"):
        plan.request(TrainConfig(pretrained="torchvision"), module="Net")
    with pytest.raises(CnnzooError, match="only a registered network can resume"):
        plan.request(TrainConfig(), module="Net", resume=True)
    run = plan.request(TrainConfig(image_size=12), module="Net")
    assert (run.model_name, run.entry, run.request_data().image_size) == ("Net", None, (12, 12))


def test_a_bad_pairing_is_refused_before_the_data_is_read() -> None:
    with pytest.raises(CnnzooError, match="pick a classification data set"):
        plan.open_data(plan.request(TrainConfig(model="lenet5", data="shapes")))
    with pytest.raises(CnnzooError, match="global batch; 4 cannot give each of 3"):
        plan.request(TrainConfig(batch_size=4), world_size=3)


def test_the_plan_of_a_digits_run_counts_its_images_and_steps() -> None:
    config = TrainConfig(
        model="lenet1989", data="digits", image_size=16, epochs=3, batch_size=32,
        train_fraction=0.5, out="somewhere",
    )  # fmt: skip
    run = plan.request(config)
    resolved, data = plan.resolve(run, plan.open_data(run))
    assert (resolved.model_name, resolved.task, resolved.registered) == (
        "lenet1989", "classification", True,
    )  # fmt: skip
    assert (resolved.in_channels, resolved.image_size) == (1, (16, 16))
    assert resolved.training_images == len(data.train) == 647  # half of 1,294
    assert resolved.batches_per_epoch == batches_per_epoch(647, 32) == 21
    assert (resolved.total_steps, resolved.epochs) == (63, 3)
    assert (resolved.data_mode, resolved.run_dir) == ("memory", Path("somewhere"))
    assert resolved.starting_weights == "a fresh initialization (seed 0)"
    assert resolved.normalization is None and not resolved.resumed
    longer = plan.request(dataclasses.replace(config, iterations=50))
    resolved, _ = plan.resolve(longer, plan.open_data(longer))
    assert (resolved.total_steps, resolved.epochs) == (50, 3)  # the last epoch partial


def test_the_plan_of_several_processes_leaves_out_a_last_batch_too_small_to_share() -> None:
    assert plan.steps_per_epoch(100, 32) == 4
    assert plan.steps_per_epoch(100, 32, world_size=3) == 3
    with pytest.raises(CnnzooError, match="5 training images cannot give each of 3"):
        plan.steps_per_epoch(5, 32, world_size=3)


def test_a_module_handed_over_trains_on_the_datas_task_and_channels() -> None:
    run = plan.request(TrainConfig(image_size=16), module="Net")
    data = plan.open_data(run, load_data("shapes", plain_request(image_size=(16, 16))))
    resolved, _ = plan.resolve(run, data)
    assert (resolved.task, resolved.registered, resolved.in_channels) == (
        "segmentation", False, 3,
    )  # fmt: skip


def test_a_resumed_plan_keeps_the_saved_recipe(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run_dir)
    saved = config_from_dict({**load_config_file(run_dir / "config.yaml"), "out": str(run_dir)})
    state = read_last_checkpoint(run_dir)
    run = plan.request(dataclasses.replace(saved, epochs=3), resume=True).resuming(state)
    resolved, _ = plan.resolve(run, plan.open_data(run))
    assert resolved.resumed and resolved.starting_weights.startswith(
        f"resumed from {run_dir / 'last.pt'}"
    )
    with pytest.raises(CnnzooError, match="a resumed run keeps its recipe; lr differ"):
        plan.request(dataclasses.replace(saved, lr=1.0), resume=True).resuming(state)


def test_the_trainer_carries_out_the_plan(tmp_path: Path) -> None:
    config = TrainConfig(
        model="lenet1989", data="digits", image_size=16, iterations=2, batch_size=32,
        out=str(tmp_path / "run"), quiet=True, plots=False,
    )  # fmt: skip
    trainer = Trainer(config)
    assert trainer.config is trainer.plan.config
    assert (trainer.in_channels, trainer.image_size) == (1, (16, 16))
    assert (trainer.total_steps, trainer.epochs) == (trainer.plan.total_steps, 1)
    assert len(trainer.data.train) == trainer.plan.training_images


def test_the_printed_plan_names_the_weights_statistics_and_the_recipes_extras() -> None:
    config = TrainConfig(
        model="lenet1989", data="digits", image_size=16, iterations=7, mixup=0.2,
        auto_augment="randaugment", warmup=2,
    )  # fmt: skip
    run = plan.request(config)
    resolved, _ = plan.resolve(run, plan.open_data(run))
    lines = dict(line.split(": ", 1) for line in resolved.describe().splitlines())
    assert lines["recipe"] == (
        "sgd lr 0.05 momentum 0.9 weight decay 0.0005, schedule cosine, warm-up 2 epoch(s), "
        "7 iterations of batches of 64, augmentation basic + randaugment + mixup 0.2, "
        "precision fp32"
    )
    assert lines["total steps"] == "7 over 1 epoch(s)"
    weights = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    pretrained = dataclasses.replace(resolved, normalization=weights)
    assert "normalization: the weights' mean (0.5, 0.5, 0.5) std (0.25, 0.25, 0.25)" in (
        pretrained.describe()
    )
