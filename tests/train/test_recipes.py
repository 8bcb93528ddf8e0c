"""The post-2017 recipe options: each reaches the one train_step or the data, and does its job."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import cnnzoo.data.transforms as transforms_module
import cnnzoo.train.step as step_module
from cnnzoo.cli import build_parser
from cnnzoo.cli.train import build_config
from cnnzoo.data import load_data, plain_request
from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.transforms import AugmentPolicy, augment_batch
from cnnzoo.device.placement import check_precision
from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.losses import cross_entropy_loss
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.config import check_recipe_task
from cnnzoo.train import Callback, TrainConfig, Trainer, train
from cnnzoo.train.optim import build_optimizer
from cnnzoo.train.step import StepRecipe, batch_mix, train_step


def tiny_config(out: Path, **changes: object) -> TrainConfig:
    """The 1989 LeNet on 16x16 digits: an epoch takes a fraction of a second."""
    values = dict(
        model="lenet1989", data="digits", image_size=16, epochs=2, batch_size=64,
        lr=0.05, augment="none", quiet=True, threads=1, plots=False, out=str(out),
    )  # fmt: skip
    values.update(changes)
    return TrainConfig(**values)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))


def _batch(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(size, 6, generator=generator), torch.arange(size) % 4


# --- flags and YAML -----------------------------------------------------------------------


def test_every_recipe_option_is_a_flag_and_a_yaml_field(tmp_path: Path) -> None:
    argv = [
        "--random-resized-crop", "--auto-augment", "trivialaugment", "--mixup", "0.2",
        "--cutmix", "1.0", "--random-erasing", "0.1", "--model-ema", "0.999",
        "--norm-weight-decay", "0", "--accumulate", "4", "--precision", "fp16", "--compile",
    ]  # fmt: skip
    from_flags = build_config(build_parser().parse_args(["train", "resnet20", *argv]))
    recipe = {
        "random_resized_crop": True, "auto_augment": "trivialaugment", "mixup": 0.2,
        "cutmix": 1.0, "random_erasing": 0.1, "model_ema": 0.999, "norm_weight_decay": 0.0,
        "accumulate": 4, "precision": "fp16", "compile": True,
    }  # fmt: skip
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet20", **recipe}))
    from_yaml = build_config(build_parser().parse_args(["train", "--config", str(path)]))
    for name, value in recipe.items():
        assert getattr(from_flags, name) == value == getattr(from_yaml, name), name
    assert TrainConfig().norm_weight_decay is None and TrainConfig().accumulate == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mixup": -1.0}, "alphas"),
        ({"random_erasing": 1.5}, "probability"),
        ({"model_ema": 1.0}, "decay"),
        ({"accumulate": 8, "batch_size": 4}, "cannot be more than --batch-size"),
        ({"cutmix": 1.0, "loss": "mse"}, "need --loss ce"),
    ],
)
def test_impossible_recipes_are_refused_in_one_line(changes: dict, message: str) -> None:
    with pytest.raises(CnnzooError, match=message) as error:
        TrainConfig(**changes).validate()
    assert "\n" not in str(error.value)


def test_label_changing_options_are_refused_for_segmentation() -> None:
    check_recipe_task(TrainConfig(mixup=0.2), "classification")
    with pytest.raises(CnnzooError, match="--mixup, --auto-augment: for classification only"):
        check_recipe_task(TrainConfig(mixup=0.2, auto_augment="randaugment"), "segmentation")


# --- MixUp / CutMix and soft targets --------------------------------------------------------


def test_mixup_turns_the_labels_into_soft_targets_that_the_loss_receives() -> None:
    images, labels = torch.randn(8, 3, 8, 8), torch.arange(8) % 4
    mixed_images, soft = batch_mix(0.2, 0.0, num_classes=4)(images, labels)
    assert soft.shape == (8, 4) and soft.is_floating_point()
    assert torch.allclose(soft.sum(1), torch.ones(8))
    assert not torch.equal(soft, F.one_hot(labels, 4).float()) and not torch.equal(
        mixed_images, images
    )
    seen = []

    def recording_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seen.append(targets)
        return F.cross_entropy(scores, targets)

    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recipe = StepRecipe(recording_loss, optimizer, mix=batch_mix(0.2, 1.0, num_classes=4))
    train_step(model, images, labels, recipe)
    assert seen[0].shape == (8, 4) and seen[0].is_floating_point()


def test_no_mixing_without_the_options_and_none_for_segmentation() -> None:
    assert batch_mix(0.0, 0.0, num_classes=10) is None
    with pytest.raises(CnnzooError, match="apply to classification"):
        batch_mix(0.2, 0.0, num_classes=None)


def test_cross_entropy_with_probabilities_is_minus_p_log_softmax() -> None:
    scores = torch.randn(5, 3)
    soft = torch.softmax(torch.randn(5, 3), 1)
    expected = -(soft * scores.log_softmax(1)).sum(1).mean()
    assert torch.allclose(cross_entropy_loss()(scores, soft), expected)
    hard = torch.tensor([0, 1, 2, 0, 1])
    assert torch.allclose(
        cross_entropy_loss()(scores, F.one_hot(hard, 3).float()), F.cross_entropy(scores, hard)
    )


# --- gradient accumulation -------------------------------------------------------------------


def test_four_micro_batches_of_8_match_one_batch_of_32() -> None:
    images, targets = _batch(32)
    whole, accumulated = _mlp(), _mlp()
    for model, parts in ((whole, 1), (accumulated, 4)):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        recipe = StepRecipe(F.cross_entropy, optimizer, accumulate=parts)
        for _ in range(3):
            loss, scores = train_step(model, images, targets, recipe)
        assert scores.shape == (32, 4)
    for a, b in zip(whole.parameters(), accumulated.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_share_smaller_than_the_micro_batch_count_still_steps() -> None:
    model = _mlp()
    recipe = StepRecipe(F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), accumulate=4)
    loss, scores = train_step(model, *_batch(2), recipe)
    assert torch.isfinite(loss) and scores.shape == (2, 4)


def test_the_config_fields_reach_the_step_recipe() -> None:
    model = _mlp()
    config = TrainConfig(accumulate=4, mixup=0.2, cutmix=1.0)
    recipe = StepRecipe.from_config(
        config, F.cross_entropy, build_optimizer(model, config), None, num_classes=4
    )
    assert recipe.accumulate == 4 and recipe.mix is not None and recipe.scaler is None


class _NoSyncCounter(nn.Module):
    """A stand-in for DistributedDataParallel that counts gradient exchanges it skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.module = _mlp()
        self.skipped = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.module(images)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        self.skipped += 1
        yield


def test_only_the_last_micro_batch_exchanges_gradients() -> None:
    model = _NoSyncCounter()
    recipe = StepRecipe(F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), accumulate=4)
    train_step(model, *_batch(32), recipe)
    assert model.skipped == 3


def test_accumulation_keeps_one_scheduler_step_per_optimizer_step() -> None:
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    recipe = StepRecipe(F.cross_entropy, optimizer, scheduler, accumulate=4)
    train_step(model, *_batch(32), recipe)
    assert scheduler.last_epoch == 1


# --- weight decay on norms and biases ----------------------------------------------------------


def test_norm_and_bias_parameters_get_their_own_weight_decay() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    config = TrainConfig(weight_decay=5e-4, norm_weight_decay=0.0)
    groups = build_optimizer(model, config).param_groups
    exempt = {id(p) for p in (model[0].bias, model[1].weight, model[1].bias, model[3].bias)}
    assert {id(p) for p in groups[1]["params"]} == exempt and groups[1]["weight_decay"] == 0.0
    assert {id(p) for p in groups[0]["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert groups[0]["weight_decay"] == 5e-4
    (single,) = build_optimizer(model, TrainConfig(weight_decay=5e-4)).param_groups
    assert single["weight_decay"] == 5e-4 and len(single["params"]) == 6


# --- EMA of the weights ------------------------------------------------------------------------


def test_ema_weights_differ_from_the_raw_ones_and_are_what_best_ema_holds(tmp_path: Path) -> None:
    result = train(tiny_config(tmp_path, model_ema=0.9))
    best, best_ema = (Checkpoint.load(tmp_path / name) for name in ("best.pt", "best-ema.pt"))
    last = Checkpoint.load(tmp_path / "last.pt")
    assert any(not torch.equal(best_ema.weights[k], last.weights[k]) for k in last.weights)
    assert best_ema.weights.keys() == best.weights.keys()
    averaged = {k.removeprefix("module."): v for k, v in last.training.model_ema.items()}
    if last.best_ema_score == last.history[-1]["val_ema_top1"]:  # the last epoch was best
        for name, tensor in best_ema.weights.items():
            assert torch.equal(tensor, averaged[name]), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["ema_top1"] <= 1.0 and metrics == result.metrics
    assert "val_ema_top1" in last.history[0]


class _StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        trainer.stop_requested = True


def test_a_resumed_run_continues_the_same_average(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "straight", model_ema=0.9))
    train(tiny_config(tmp_path / "resumed", model_ema=0.9), callbacks=[_StopAfterFirstEpoch()])
    train(tiny_config(tmp_path / "resumed", model_ema=0.9), resume=True)
    straight, resumed = (
        Checkpoint.load(tmp_path / run / "last.pt") for run in ("straight", "resumed")
    )
    for name, tensor in straight.training.model_ema.items():
        assert torch.equal(tensor, resumed.training.model_ema[name]), name
    assert straight.best_ema_score == resumed.best_ema_score


def test_ema_is_updated_after_every_optimizer_step() -> None:
    from cnnzoo.train.ema import build_model_ema

    model = _mlp()
    ema = build_model_ema(model, 0.5)
    recipe = StepRecipe(F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.5), ema=ema)
    start = [p.detach().clone() for p in model.parameters()]
    train_step(model, *_batch(), recipe)
    train_step(model, *_batch(), recipe)
    assert int(ema.n_averaged) == 2
    first_update = [p.detach() for p in ema.module.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(first_update, model.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(first_update, start))
    assert build_model_ema(model, None) is None


# --- precision and compilation ------------------------------------------------------------------


def test_fp16_is_refused_off_cuda_in_one_line() -> None:
    with pytest.raises(CnnzooError, match="fp16 needs a CUDA device.*bf16") as error:
        check_precision("fp16", "cpu")
    assert "\n" not in str(error.value)
    check_precision("bf16", "cpu")


def test_an_fp16_recipe_scales_its_loss() -> None:
    recipe = StepRecipe(F.cross_entropy, torch.optim.SGD(_mlp().parameters(), lr=0.1))
    assert recipe.scaler is None
    with (
        pytest.warns(UserWarning, match="CUDA")
        if not torch.cuda.is_available()
        else (contextlib.nullcontext())
    ):
        fp16 = StepRecipe(
            F.cross_entropy, torch.optim.SGD(_mlp().parameters(), lr=0.1), precision="fp16"
        )
    assert isinstance(fp16.scaler, torch.amp.GradScaler)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 training needs CUDA")
def test_an_fp16_step_on_cuda_trains_with_a_scaled_loss() -> None:
    model = _mlp().cuda()
    recipe = StepRecipe(
        F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), precision="fp16"
    )
    before = [p.detach().clone() for p in model.parameters()]
    images, targets = (t.cuda() for t in _batch())
    loss, scores = train_step(model, images, targets, recipe)
    assert torch.isfinite(loss) and scores.dtype == torch.float32
    assert recipe.scaler.get_scale() > 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_the_compile_flag_reaches_torch_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = []

    def fake_compile(model: nn.Module) -> nn.Module:
        compiled.append(model)
        return model

    monkeypatch.setattr(step_module.torch, "compile", fake_compile)
    trainer = Trainer(tiny_config(tmp_path, compile=True, epochs=1))
    assert compiled == [trainer.model] and trainer.train_model is trainer.model
    Trainer(tiny_config(tmp_path / "eager", epochs=1))
    assert len(compiled) == 1


@pytest.mark.slow
def test_a_compiled_step_gives_the_eager_loss() -> None:
    images, targets = _batch(16)
    losses = []
    for model in (_mlp(), torch.compile(_mlp())):
        recipe = StepRecipe(F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1))
        losses.append([float(train_step(model, images, targets, recipe)[0]) for _ in range(3)])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


# --- the in-memory data path: RandomResizedCrop, auto-augment, random erasing ---------------------


def _bytes(count: int = 6, side: int = 12) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    return torch.randint(0, 256, (count, 3, side, side), generator=generator, dtype=torch.uint8)


def test_random_resized_crop_of_the_whole_image_is_the_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = _bytes()
    monkeypatch.setattr(transforms_module, "CROP_AREA", (1.0, 1.0))
    monkeypatch.setattr(transforms_module, "CROP_ASPECT", (1.0, 1.0))
    whole, _ = augment_batch(images, None, AugmentPolicy(resized_crop=True))
    assert torch.allclose(whole, images.float(), atol=1e-3)


def test_random_resized_crop_gives_each_image_its_own_box() -> None:
    images = _bytes(1).expand(8, -1, -1, -1)
    generator = torch.Generator().manual_seed(0)
    cropped, _ = augment_batch(images, None, AugmentPolicy(resized_crop=True), generator)
    assert cropped.shape == images.shape
    assert len({tuple(c.flatten()[:40].tolist()) for c in cropped}) == 8
    theta = transforms_module._random_resized_crops(torch.Size((500, 3, 32, 32)), False, generator)
    areas = theta[:, 0, 0] * theta[:, 1, 1]  # share of the image's area in each box
    assert areas.min() >= 0.07 and areas.max() <= 1.0 and areas.mean() < 0.7


@pytest.mark.parametrize("name", ["autoaugment", "randaugment", "trivialaugment"])
def test_auto_augment_changes_images_per_sample_and_follows_the_generator(name: str) -> None:
    images, policy = _bytes(), AugmentPolicy(auto_augment=name)
    runs = [
        augment_batch(images, None, policy, torch.Generator().manual_seed(seed))[0]
        for seed in (1, 1, 2)
    ]
    assert runs[0].dtype == torch.uint8 and torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], images) and not torch.equal(runs[0], runs[2])


def test_random_erasing_erases_normalized_images_to_the_mean() -> None:
    normalization = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = _bytes()
    plain = InMemoryImages(images, torch.zeros(6), normalization)
    erased = InMemoryImages(
        images, torch.zeros(6), normalization, augment=AugmentPolicy(random_erasing=1.0)
    )
    generator = torch.Generator().manual_seed(0)
    before, after = plain.batch(torch.arange(6))[0], erased.batch(torch.arange(6), generator)[0]
    changed = before != after
    assert changed.any() and (after[changed] == 0).all()


def test_the_recipe_reaches_the_training_split_only() -> None:
    request = plain_request(
        image_size=(16, 16), in_channels=1, augment="none", random_resized_crop=True,
        auto_augment="randaugment", random_erasing=0.25,
    )  # fmt: skip
    data = load_data("digits", request)
    assert data.train.augment == AugmentPolicy(
        resized_crop=True, auto_augment="randaugment", random_erasing=0.25
    )
    assert data.val.augment.is_identity
