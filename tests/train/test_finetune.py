"""Fine-tuning: --pretrained, --init-from, --freeze-backbone, --head-lr-scale, --train-fraction.

Pretrained weights are written by the tests into a temporary torch hub cache
(random values under torchvision's names and file name); nothing downloads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torchvision

from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.saved_network import evaluate_checkpoint
from cnnzoo.inference.predictor import Predictor
from cnnzoo.models.registry import create_model, get_model_entry
from cnnzoo.models.weights import hub
from cnnzoo.models.weights.torchvision import converter_for
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.config import TrainConfig
from cnnzoo.runs.plan import data_request, pretrained_defaults
from cnnzoo.train.finetune import init_from_checkpoint
from cnnzoo.train.optim import build_optimizer, build_scheduler
from cnnzoo.train.trainer import Trainer

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
PRETRAINED = "mobilenet_v3_small"  # the smallest network with torchvision weights


@pytest.fixture
def hub_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """torchvision's MobileNet-v3-small, freshly initialised, in a torch hub cache of the test's."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def refuse(url: str, destination: Path, timeout: float = 0) -> None:
        raise OSError("no network in the tests")

    monkeypatch.setattr(hub, "download_weights", refuse)
    state = torchvision.models.get_model(PRETRAINED, weights=None).state_dict()
    hub.weights_folder().mkdir(parents=True)
    torch.save(state, hub.weights_folder() / hub.weights_file_name(PRETRAINED))
    return converter_for(PRETRAINED)(state)


def pretrained_config(tmp_path: Path, **values: object) -> TrainConfig:
    """MobileNet-v3-small from its weights on digits at 32x32: one step of 16 images."""
    return TrainConfig(
        model=PRETRAINED, data="digits", pretrained="torchvision", image_size=32,
        iterations=1, batch_size=16, out=str(tmp_path / "run"), plots=False, quiet=True,
        **values,
    )  # fmt: skip


def lenet_config(tmp_path: Path, out: str, **values: object) -> TrainConfig:
    """The 1989 LeNet on 16x16 digits, one step: a run in a fraction of a second."""
    defaults = {"model": "lenet1989", "data": "digits", "image_size": 16, "iterations": 1}
    return TrainConfig(
        **{**defaults, **values}, batch_size=16, out=str(tmp_path / out), plots=False, quiet=True
    )


def test_pretrained_run_loads_the_files_tensors_and_a_fresh_head(
    hub_weights: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    trainer = Trainer(pretrained_config(tmp_path, channels_last=False))
    ours = trainer.model.state_dict()
    assert trainer.head == ("classifier.weight", "classifier.bias")
    assert ours["classifier.weight"].shape == (10, 1024)
    loaded = [key for key in hub_weights if key not in trainer.head]
    assert loaded and all(torch.equal(ours[key], hub_weights[key]) for key in loaded)


def test_the_weights_preprocessing_is_the_runs_and_loads_without_the_file(
    hub_weights: dict[str, torch.Tensor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = Trainer(pretrained_config(tmp_path))
    assert trainer.in_channels == 3  # digits are grey: converted to RGB
    assert trainer.data.train[0][0].shape == (3, 32, 32)
    assert list(trainer.data.test.normalization.mean) == IMAGENET_MEAN
    assert trainer.config.crop_ratio == 224 / 256  # the weights': resize 256, crop 224
    assert trainer.config.image_size == 32  # given explicitly, it wins
    metrics = trainer.fit().metrics
    checkpoint = Checkpoint.load(tmp_path / "run")
    assert list(checkpoint.normalization.mean) == IMAGENET_MEAN
    assert list(checkpoint.normalization.std) == IMAGENET_STD
    assert checkpoint.in_channels == 3
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # no weight file any more
    loaded = Predictor.from_checkpoint(tmp_path / "run")
    assert all(torch.equal(v, checkpoint.weights[k]) for k, v in loaded.model.state_dict().items())
    assert list(loaded.preprocessing.normalization.std) == IMAGENET_STD
    assert evaluate_checkpoint(tmp_path / "run").metrics["top1"] == metrics["top1"]


def test_without_a_size_the_weights_crop_and_ratio_are_the_defaults() -> None:
    entry = get_model_entry("resnet50")
    config, normalization = pretrained_defaults(
        TrainConfig(model="resnet50", pretrained="imagenet"), entry
    )
    assert (config.image_size, config.crop_ratio, config.in_channels) == ([224, 224], 224 / 232, 3)
    assert list(normalization.mean) == IMAGENET_MEAN
    assert data_request(config, (224, 224), 3).crop_ratio == 224 / 232
    given = TrainConfig(model="resnet50", pretrained="imagenet", image_size=96, crop_ratio=0.5)
    config, _ = pretrained_defaults(given, entry)
    assert (config.image_size, config.crop_ratio) == (96, 0.5)


def test_pretrained_with_one_channel_and_options_without_a_start_are_refused() -> None:
    with pytest.raises(CnnzooError, match="take 3 channels.*drop --in-channels 1"):
        TrainConfig(pretrained="torchvision", in_channels=1).validate()
    with pytest.raises(CnnzooError, match="--freeze-backbone and --head-lr-scale: .*--pretrained"):
        TrainConfig(freeze_backbone=True, head_lr_scale=10).validate()
    with pytest.raises(CnnzooError, match="give one"):
        TrainConfig(pretrained="torchvision", init_from="runs/x").validate()


def test_a_network_without_torchvision_weights_is_refused_before_data_loads(
    tmp_path: Path,
) -> None:
    config = lenet_config(tmp_path, "run", pretrained="torchvision", data="no-such-data")
    with pytest.raises(CnnzooError, match="'lenet1989' has no torchvision weights; .* resnet18"):
        Trainer(config)


def test_freezing_trains_the_head_alone_and_keeps_the_batch_norm_statistics(
    hub_weights: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    trainer = Trainer(pretrained_config(tmp_path, freeze_backbone=True, channels_last=False))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trained = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert trained == [trainer.model.classifier.weight, trainer.model.classifier.bias]
    trainer.fit()
    after = trainer.model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"classifier.weight", "classifier.bias"}  # running means included


def test_a_frozen_pretrained_run_resumes_without_the_weight_file(
    hub_weights: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    config = pretrained_config(tmp_path, freeze_backbone=True, train_fraction=0.1)
    config = dataclasses.replace(config, iterations=None, epochs=1)
    Trainer(config).fit()
    for weights in hub.weights_folder().iterdir():
        weights.unlink()
    resumed = Trainer(dataclasses.replace(config, epochs=2), resume=True)
    assert resumed.head == ("classifier.weight", "classifier.bias")
    assert len(resumed.optimizer.param_groups[0]["params"]) == 2
    ours = resumed.fit().model.state_dict()
    frozen = [key for key in hub_weights if key not in resumed.head]
    assert all(torch.equal(ours[key], hub_weights[key]) for key in frozen)


def test_the_head_learns_at_its_own_rate_through_the_schedule() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 3))
    config = TrainConfig(lr=0.1, head_lr_scale=10, pretrained="torchvision", norm_weight_decay=0)
    optimizer = build_optimizer(model, config, head=("1.weight", "1.bias"))
    rates = [
        (group["lr"], group["weight_decay"], len(group["params"]))
        for group in optimizer.param_groups
    ]
    assert rates == [(0.1, 5e-4, 1), (1.0, 5e-4, 1), (0.1, 0, 1), (1.0, 0, 1)]
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=1, total_steps=2)
    optimizer.step()
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups[:2]] == pytest.approx([0.05, 0.5])
    with pytest.raises(CnnzooError, match="--head-lr-scale: every tensor came from"):
        build_optimizer(model, config, head=())


def test_init_from_copies_every_fitting_tensor_and_records_the_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = Trainer(lenet_config(tmp_path, "source")).fit().model.state_dict()
    config = lenet_config(tmp_path, "tuned", init_from=str(tmp_path / "source"), train_fraction=0.1)
    trainer = Trainer(dataclasses.replace(config, quiet=False, channels_last=False))
    assert all(torch.equal(v, source[k]) for k, v in trainer.model.state_dict().items())
    assert (
        "source/best.pt (lenet1989): 8 of 8 tensors loaded; none fresh" in capsys.readouterr().out
    )
    assert trainer.head == (
        "hidden.1.weight",
        "hidden.1.bias",
        "output.0.weight",
        "output.0.bias",
    )  # the network's own head: hidden and output layers
    assert trainer.fit().metrics["training_images"] == 129  # a tenth of the training digits


def test_init_from_leaves_tensors_of_another_shape_fresh_and_names_them(tmp_path: Path) -> None:
    Trainer(lenet_config(tmp_path, "source")).fit()
    checkpoint = Checkpoint.load(tmp_path / "source")
    checkpoint.weights["output.0.weight"] = torch.zeros(1000, 30)
    checkpoint.weights["output.0.bias"] = torch.zeros(1000)
    classes = [str(i) for i in range(1000)]
    dataclasses.replace(checkpoint, class_names=classes).save(tmp_path / "imagenet.pt")
    model = create_model("lenet1989", num_classes=10, in_channels=1)
    start = init_from_checkpoint(model, str(tmp_path / "imagenet.pt"), "classification")
    assert start.reset == ("output.0.weight", "output.0.bias")
    assert "fresh: output.0.weight ([1000, 30] in the file, [10, 30] here)" in start.describe()
    assert not torch.equal(model.output[0].bias, torch.zeros(10))


def test_init_from_refuses_another_task_and_another_architecture(tmp_path: Path) -> None:
    Trainer(lenet_config(tmp_path, "source")).fit()
    checkpoint = Checkpoint.load(tmp_path / "source")
    weights = create_model("resnet20", num_classes=10).state_dict()
    other = dataclasses.replace(checkpoint, weights=weights, model_name="resnet20")
    other.save(tmp_path / "resnet.pt")
    segmenter = dataclasses.replace(checkpoint, model_name="unet", task="segmentation")
    segmenter.save(tmp_path / "seg.pt")
    model = create_model("lenet1989", num_classes=10, in_channels=1)
    with pytest.raises(CnnzooError, match="holds a segmentation network .* classification"):
        init_from_checkpoint(model, str(tmp_path / "seg.pt"), "classification")
    with pytest.raises(CnnzooError, match="'resnet20', which shares no tensor .* architecture"):
        init_from_checkpoint(model, str(tmp_path / "resnet.pt"), "classification")


def test_the_flags_and_yaml_set_the_fields(tmp_path: Path) -> None:
    from cnnzoo.cli import build_parser
    from cnnzoo.cli.train import build_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("pretrained: torchvision\nfreeze_backbone: true\ntrain_fraction: 0.25\n")
    argv = ["train", "resnet18", "--config", str(recipe), "--head-lr-scale", "10"]
    config = build_config(build_parser().parse_args(argv))
    assert (config.pretrained, config.freeze_backbone) == ("torchvision", True)
    assert (config.train_fraction, config.head_lr_scale) == (0.25, 10.0)
    config = build_config(build_parser().parse_args(["train", "--init-from", "runs/a"]))
    assert config.init_from == "runs/a" and config.pretrained is None


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pretrained", "torchvision", "--in-channels", "1"], "drop --in-channels 1"),
        (["--pretrained", "torchvision"], "'lenet1989' has no torchvision weights; models that"),
        (["--freeze-backbone"], "a fresh head exists only when"),
        (["--init-from", "nowhere"], "nowhere does not exist; give a run directory"),
        (["--train-fraction", "0"], "train_fraction must be in (0, 1], got 0.0"),
    ],
)
def test_bad_fine_tuning_input_is_one_line_and_exit_status_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnzoo.cli import main

    argv = ["train", "lenet1989", "--data", "digits", "--out", str(tmp_path / "run"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_options_the_weights_switch_on_stay_with_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    state = torchvision.models.get_model("googlenet", weights=None, init_weights=False)
    hub.weights_folder().mkdir(parents=True)
    torch.save(state.state_dict(), hub.weights_folder() / hub.weights_file_name("googlenet"))
    config = TrainConfig(
        model="googlenet", data="digits", pretrained="torchvision", image_size=64,
        iterations=1, batch_size=8, out=str(tmp_path / "run"), plots=False, quiet=True,
    )  # fmt: skip
    Trainer(config).fit()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    loaded = Predictor.from_checkpoint(tmp_path / "run")
    assert loaded.model.transform_input  # as trained, with no weight file


def test_a_segmentation_encoder_starts_from_its_backbones_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    state = torchvision.models.get_model("resnet18", weights=None).state_dict()
    hub.weights_folder().mkdir(parents=True)
    torch.save(state, hub.weights_folder() / hub.weights_file_name("resnet18"))
    config = TrainConfig(
        model="unet", model_options={"backbone": "resnet18"}, data="shapes",
        pretrained="imagenet", iterations=1, batch_size=4, out=str(tmp_path / "run"),
        plots=False, quiet=True, channels_last=False,
    )  # fmt: skip
    trainer = Trainer(config)
    prefix = "encoder.model."
    encoder = {
        key.removeprefix(prefix): value
        for key, value in trainer.model.state_dict().items()
        if key.startswith(prefix)
    }
    expected = converter_for("resnet18")(state)
    assert encoder and encoder.keys() <= expected.keys()
    assert all(torch.equal(value, expected[key]) for key, value in encoder.items())
    trainer.fit()
    checkpoint = Checkpoint.load(tmp_path / "run" / "best.pt")
    assert checkpoint.in_channels == 3  # the weights' colour channels, the shapes served so
    assert checkpoint.preprocessing.size is None  # each image at its own size
    assert list(checkpoint.normalization.mean) == IMAGENET_MEAN
