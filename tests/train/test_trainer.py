"""The training loop on tiny runs: exact resume, auxiliary heads, segmentation, run directories."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import cnnzoo.train.trainer as trainer_module
from cnnzoo.data import DataSplits
from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.transforms import augment_policy
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.predictor import Predictor
from cnnzoo.runs import plan
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.train import Callback, TrainConfig, Trainer, train

RUN_FILES = ("config.yaml", "best.pt", "last.pt", "log.csv", "curves.png", "confusion.png")


def tiny_config(out: Path, **changes: object) -> TrainConfig:
    """The 1989 LeNet on 16x16 digits: a whole epoch takes a fraction of a second."""
    values = dict(
        model="lenet1989", data="digits", image_size=16, epochs=2, batch_size=64,
        lr=0.05, schedule="cosine", augment="basic", quiet=True, threads=1, plots=False,
        out=str(out),
    )  # fmt: skip
    values.update(changes)
    return TrainConfig(**values)


class StopAfter(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        if trainer.epoch >= self.epochs:
            trainer.stop_requested = True


def test_one_epoch_then_resume_gives_the_same_weights_as_two_straight(tmp_path: Path) -> None:
    straight = train(tiny_config(tmp_path / "straight"))
    stopped = train(tiny_config(tmp_path / "resumed"), callbacks=[StopAfter(1)])
    assert not stopped.completed and not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = train(tiny_config(tmp_path / "resumed"), resume=True)
    assert resumed.completed
    final = [Checkpoint.load(tmp_path / run / "last.pt") for run in ("straight", "resumed")]
    for name, tensor in final[0].weights.items():
        assert torch.equal(tensor, final[1].weights[name]), name
    assert final[0].step == final[1].step == 2 * 21  # 1,294 training digits, batch 64
    assert straight.metrics["top1"] == resumed.metrics["top1"]
    with open(tmp_path / "resumed" / "log.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]


def test_run_directory_holds_every_artefact_and_metrics(tmp_path: Path) -> None:
    result = train(tiny_config(tmp_path / "run", epochs=1, log_grad_norms=5, plots=True))
    for name in (*RUN_FILES, "metrics.json", "grad_norms.csv", "grad_norms.png"):
        assert (tmp_path / "run" / name).is_file(), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics == result.metrics
    for key in ("top1", "top5", "loss", "epochs", "train_seconds", "images_per_second"):
        assert key in metrics
    assert metrics["split"] == "test" and metrics["epochs"] == 1


def test_bf16_channels_last_and_tensorboard(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path / "run", epochs=1, precision="bf16", channels_last=True, tensorboard=True
    )
    assert math.isfinite(train(config).metrics["loss"])
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize(("setting", "nhwc"), [(None, True), (True, True), (False, False)])
def test_networks_train_nhwc_on_cpu_unless_told(
    setting: bool | None, nhwc: bool, tmp_path: Path
) -> None:
    trainer = Trainer(tiny_config(tmp_path / "run", epochs=1, channels_last=setting))
    layout = torch.channels_last if nhwc else torch.contiguous_format
    convs = [m for m in trainer.model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and trainer.channels_last == nhwc
    assert all(c.weight.is_contiguous(memory_format=layout) for c in convs)
    assert trainer.fit().completed
    assert all(c.weight.is_contiguous(memory_format=layout) for c in convs)


def test_existing_run_is_not_overwritten_without_force(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "run", epochs=1))
    with pytest.raises(CnnzooError, match="already holds a run.*--resume.*--force"):
        Trainer(tiny_config(tmp_path / "run", epochs=1))
    assert train(tiny_config(tmp_path / "run", epochs=1), force=True).completed


def test_resume_refuses_another_model_or_recipe(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "run", epochs=1))
    with pytest.raises(CnnzooError, match="is of 'lenet1989', not 'lenet5'"):
        Trainer(tiny_config(tmp_path / "run", model="lenet5", image_size=32), resume=True)
    with pytest.raises(CnnzooError, match="keeps its recipe; lr differ"):
        Trainer(tiny_config(tmp_path / "run", lr=0.5), resume=True)


def test_an_unwritable_output_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CnnzooError, match="cannot write to the run directory"):
        Trainer(tiny_config(blocker / "run"))


def test_task_of_model_and_data_must_agree(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="segmentation network but 'digits' is a classification"):
        Trainer(tiny_config(tmp_path / "run", model="unet", image_size=None))


def test_a_diverging_loss_stops_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(CnnzooError, match="the loss became .* lower --lr"):
        train(tiny_config(tmp_path / "run", loss="ce", lr=1e30, schedule="none"))


class WithAuxiliaryHead(nn.Module):
    """Returns (main, auxiliary) in training like GoogLeNet; the auxiliary scores are zeros."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        scores = self.model(x)
        return (scores, torch.zeros_like(scores)) if self.training else scores


def test_auxiliary_outputs_add_their_loss_with_weight_point_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = trainer_module.create_model
    monkeypatch.setattr(
        trainer_module, "create_model", lambda *a, **k: WithAuxiliaryHead(real_create(*a, **k))
    )
    trainer = Trainer(tiny_config(tmp_path / "run", augment="none"))
    images, targets = trainer.data.train.batch(torch.arange(8))
    trainer.model.train()
    main_loss = F.cross_entropy(trainer.model.model(images), targets)
    loss, _ = trainer._train_step(images, targets)
    # Zero auxiliary scores over 10 classes have cross-entropy log(10).
    assert loss.item() == pytest.approx(main_loss.item() + 0.3 * math.log(10), rel=1e-5)


def test_segmentation_runs_through_the_same_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 3, (40, 16, 16), generator=generator)
    masks[:, 0, :] = 255  # a void row
    images = (masks.clamp(max=2) * 100).to(torch.uint8).unsqueeze(1).repeat(1, 3, 1, 1)
    normalization = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

    def split(policy: str) -> InMemoryImages:
        return InMemoryImages(
            images, masks, normalization, augment=augment_policy(policy, True), ignore_index=255
        )

    splits = DataSplits("segmentation", split("basic"), split("none"), split("none"),
                        ["background", "a", "b"], ignore_index=255)  # fmt: skip
    monkeypatch.setattr(plan, "load_data", lambda *a, **k: splits)
    monkeypatch.setattr(
        trainer_module, "create_model", lambda *a, num_classes, in_channels, **k: nn.Conv2d(
            in_channels, num_classes, 3, padding=1
        ),
    )  # fmt: skip
    config = tiny_config(
        tmp_path / "run", model="unet", data="toy", image_size=16, in_channels=3, epochs=3,
        batch_size=8, lr=0.5, class_weights="median_frequency", plots=True,
    )  # fmt: skip
    metrics = train(config).metrics
    for key in ("miou", "pixel_acc", "mean_class_acc", "fwiou", "iou_per_class", "loss"):
        assert key in metrics
    assert len(metrics["iou_per_class"]) == 3
    assert metrics["pixel_acc"] > 0.9  # each class has its own grey level: easy to learn
    assert (tmp_path / "run" / "confusion.png").is_file()

    # predict writes a mask and an overlay per image for segmentation networks.
    import cnnzoo.inference.predictor as predictor_module
    from cnnzoo.inference.predict_files import predict_images

    monkeypatch.setattr(predictor_module, "create_model", trainer_module.create_model)
    Image.fromarray(images[0].permute(1, 2, 0).numpy()).save(tmp_path / "toy.png")
    loaded = Predictor.from_checkpoint(tmp_path / "run")
    (result,) = predict_images(loaded, [tmp_path / "toy.png"], out_dir=tmp_path / "p")
    assert [Path(f).name for f in result["files"]] == ["toy_mask.png", "toy_overlay.png"]


def _separable_splits() -> DataSplits:
    """Two classes of 8x8 grey images, bright or dark: learnt in a few steps."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(48) % 2
    images = labels.view(-1, 1, 1, 1) * 150 + torch.randint(
        0, 60, (48, 1, 8, 8), generator=generator
    )
    dataset = InMemoryImages(images.to(torch.uint8), labels, Normalization((0.5,), (0.25,)))
    return DataSplits("classification", dataset, dataset, dataset, ["dark", "bright"])


class _TinyNet(nn.Module):
    """A network of no registry entry, with an auxiliary head in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
        self.aux = nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        scores = self.body(x)
        return (scores, self.aux(x.flatten(1))) if self.training else scores


def test_a_given_module_and_data_train_through_the_same_loop(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _TinyNet()
    config = TrainConfig(
        epochs=3, batch_size=8, lr=0.1, label_smoothing=0.1, grad_clip=1.0, quiet=True,
        plots=False, out=str(tmp_path / "run"),
    )  # fmt: skip
    aux_before = model.aux.weight.detach().clone()
    trainer = Trainer(config, model=model, data=_separable_splits())
    result = trainer.fit()
    assert result.model is model and trainer.step == 3 * 6
    assert not torch.equal(model.aux.weight, aux_before), "the auxiliary loss trains its head"
    assert result.metrics["top1"] == 1.0 and result.metrics["model"] == "_TinyNet"
    assert trainer.in_channels == 1 and trainer.image_size == (8, 8)
    best = Checkpoint.load(tmp_path / "run" / "best.pt", registered=False)
    assert best.model_name == "_TinyNet" and best.training is None
    with pytest.raises(CnnzooError, match="only a registered network can resume"):
        Trainer(config, resume=True, model=model, data=_separable_splits())
