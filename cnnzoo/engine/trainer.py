"""The training loop, for classification and segmentation alike.

The loop knows nothing about particular networks. A model returns a tensor
of scores, or in training mode a tuple ``(main, *auxiliary)``; the auxiliary
outputs (GoogLeNet's side classifiers, the FCN/DeepLab auxiliary heads) add
their loss with weight ``aux_weight`` = 0.3 (Szegedy et al. 2014, sec. 5:
"the losses of the auxiliary classifiers were weighted by 0.3"). The task
comes from the model's registry entry and must match the data set's.

A run directory ends up holding ``config.yaml``, ``best.pt`` (best validation
score), ``last.pt`` (resumable), ``log.csv``, ``curves.png``,
``confusion.png`` and ``metrics.json`` (the best checkpoint on the test
split). Resuming restores weights, optimiser, scheduler, epoch and every
random generator, and each epoch's shuffling and augmentation are drawn from
a generator seeded by (seed, epoch), so 1 + resume + 1 epochs give the same
weights as 2 epochs straight.

Callbacks (:class:`Callback`) see each step after the backward pass, e.g.
to record gradient norms (``--log-grad-norms``).

Under torchrun the same loop runs in every process (:mod:`cnnzoo.engine.distributed`):
each trains on its share of every global batch, metrics are summed over the
processes, and only the main process writes the run directory, prints and
runs callbacks. SIGINT and SIGTERM stop the run after the current step with a
resumable ``last.pt`` that records where in the epoch it stopped
(:mod:`cnnzoo.engine.safety`).
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.data import DataRequest, DataSplits, list_datasets, load_data, source_name
from cnnzoo.engine.checkpoint import (
    FORMAT_VERSION,
    capture_rng_state,
    load_checkpoint,
    load_weights,
    restore_rng_state,
    save_checkpoint,
)
from cnnzoo.engine.config import (
    FIELD_NAMES,
    RESUMABLE_FIELDS,
    TrainConfig,
    config_from_dict,
    save_config,
)
from cnnzoo.engine.distributed import (
    SINGLE_PROCESS,
    DistributedContext,
    process_device,
    process_group,
    wrap_model,
)
from cnnzoo.engine.evaluate import autocast, evaluate, to_device
from cnnzoo.engine.layout import resolve_channels_last, to_channels_last
from cnnzoo.engine.losses import LossFunction, build_loss, median_frequency_weights
from cnnzoo.engine.metrics import MetricTracker
from cnnzoo.engine.optim import build_optimizer, build_scheduler
from cnnzoo.engine.run_log import TensorBoardLog, epoch_line, progress, write_csv
from cnnzoo.engine.safety import StopSignals, check_free_space
from cnnzoo.errors import CnnzooError
from cnnzoo.registry import ModelEntry, check_input_size, create_model, get_model_entry

# Files a run writes; --force removes exactly these before starting again.
RUN_FILES = (
    "config.yaml",
    "best.pt",
    "last.pt",
    "log.csv",
    "curves.png",
    "confusion.png",
    "metrics.json",
    "grad_norms.csv",
    "grad_norms.png",
)


class Callback:
    """Hooks into the loop; override the ones you need (run by the main process only)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """After the model, data and optimiser exist, before the first step."""

    def on_after_backward(self, step: int, model: nn.Module) -> None:
        """After ``loss.backward()``, before gradient clipping and the optimiser step."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """After validation and checkpointing; set ``trainer.stop_requested`` to stop."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After training, when the run directory is complete."""


class GradientNormLogger(Callback):
    """Records per-layer gradient norms every ``every`` steps (``--log-grad-norms N``)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.recorder: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        from cnnzoo.analysis.gradient_flow import GradNormRecorder

        self.recorder = GradNormRecorder(trainer.model, self.every)

    def on_after_backward(self, step: int, model: nn.Module) -> None:
        self.recorder.after_backward(step)

    def on_train_end(self, trainer: Trainer) -> None:
        self.recorder.save(trainer.run_dir)


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]  # what metrics.json holds; empty when the run was stopped early
    model: nn.Module
    completed: bool  # False when a callback or a signal stopped the run before its end
    stop_signal: int | None = None  # the SIGINT/SIGTERM number that stopped the run, if any


def default_run_dir(config: TrainConfig) -> Path:
    """runs/MODEL-DATA, with the data name made safe for a directory name."""
    data = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.data.replace(":", "-")).strip("-")
    return Path("runs") / f"{config.model}-{data}"


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnzooError("--device cuda was asked for but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_input(config: TrainConfig, entry: ModelEntry) -> tuple[int, tuple[int, int]]:
    """The model's input channels and (H, W): the configuration's, else the paper's."""
    channels = config.in_channels or entry.input_size[0]
    side = config.image_size
    size = (side, side) if side else (entry.input_size[1], entry.input_size[2])
    check_input_size(entry.name, entry.min_size, (channels, *size))
    return channels, size


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator behind one epoch's shuffling and augmentation, fixed by (seed, epoch)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class Trainer:
    """Trains one configuration; :meth:`fit` runs it to the end and returns the result."""

    def __init__(
        self, config: TrainConfig, *, resume: bool = False, force: bool = False,
        callbacks: list[Callback] | None = None, context: DistributedContext | None = None,
    ) -> None:  # fmt: skip
        config.validate()
        self.context = context or SINGLE_PROCESS
        self.device = process_device(self.context, pick_device(config.device))
        self.channels_last = resolve_channels_last(config.channels_last, self.device)
        self.run_dir = Path(config.out) if config.out else default_run_dir(config)
        self.resume_state: dict[str, Any] | None = None
        if resume:
            # Only the main process reads the run directory (it may live on its machine only).
            self.resume_state = self.context.from_main(
                lambda: _read_last_checkpoint(self.run_dir), self.device
            )
            config = _resumed_config(self.resume_state, config, self.run_dir)
        self.config = config
        if config.batch_size < 2 * self.context.world_size:
            raise CnnzooError(
                f"--batch-size is the global batch; {config.batch_size} cannot give each of "
                f"{self.context.world_size} processes two images; raise it"
            )
        self.callbacks = list(callbacks or []) if self.context.is_main else []
        if config.log_grad_norms and self.context.is_main:
            self.callbacks.append(GradientNormLogger(config.log_grad_norms))
        self.stop_requested = False
        self.stop_signal: int | None = None
        self.epoch_progress: dict[str, Any] | None = None  # where an interrupted epoch stopped
        self.entry = get_model_entry(config.model)
        if config.threads:
            torch.set_num_threads(config.threads)

        check_data_task(self.entry, config.data)
        seed_everything(config.seed)
        self.in_channels, self.image_size = resolve_input(config, self.entry)
        self.data = load_data(
            config.data,
            DataRequest(
                data_dir=Path(config.data_dir) if config.data_dir else None,
                download=config.download,
                image_size=self.image_size,
                in_channels=self.in_channels,
                augment=config.augment,
                seed=config.seed,
                val_fraction=config.val_fraction,
            ),
        )
        self.task = check_task(self.entry, self.data, config.data)
        self.class_names = list(self.data.class_names)
        self.model = self._build_model()
        # The run directory is made only once data and network are known to load, so that a
        # bad --data or model option leaves no empty directory behind.
        self.context.from_main(
            lambda: prepare_run_dir(self.run_dir, resume=resume, force=force), self.device
        )
        self.context.from_main(lambda: check_free_space(self.run_dir, self.model), self.device)
        # What a training step calls: DDP around the model when there are several processes.
        self.train_model = wrap_model(self.model, self.context, self.device, sync_bn=config.sync_bn)
        self.loss_fn = self._build_loss()
        self.steps_per_epoch = self.context.steps_per_epoch(len(self.data.train), config.batch_size)
        self.total_steps = config.iterations or config.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(
            self.optimizer, config, self.steps_per_epoch, self.total_steps
        )
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimiser steps
        self.history: list[dict[str, Any]] = []
        self.best_score = -math.inf
        self.train_seconds = 0.0  # wall time of training and validation, over all sessions
        self.compute_seconds = 0.0  # time inside training steps only
        self.train_images = 0
        if self.resume_state is not None:
            self._restore(self.resume_state)

    # --- set-up ------------------------------------------------------------------------

    def _build_model(self) -> nn.Module:
        model = create_model(
            self.config.model,
            num_classes=len(self.class_names),
            in_channels=self.in_channels,
            **self.config.model_options,
        )
        model = model.to(self.device)
        if self.channels_last:
            example = torch.zeros(2, self.in_channels, *self.image_size, device=self.device)
            model = to_channels_last(model, example)
        return model

    def _build_loss(self) -> LossFunction:
        weights = None
        if self.config.class_weights == "median_frequency":
            if self.task != "segmentation":
                raise CnnzooError("median-frequency class weights apply to segmentation data")
            weights = median_frequency_weights(
                _masks(self.data.train), len(self.class_names), self.data.ignore_index
            )
        return build_loss(
            self.config.loss,
            class_weights=weights,
            ignore_index=self.data.ignore_index,
            label_smoothing=self.config.label_smoothing,
        )

    def _restore(self, state: dict[str, Any]) -> None:
        if list(state["class_names"]) != self.class_names:
            raise CnnzooError(
                f"{self.run_dir / 'last.pt'} was trained on the classes {state['class_names']} "
                f"but {self.config.data!r} now has {self.class_names}; resume on the same data"
            )
        load_weights(self.model, state, self.run_dir / "last.pt")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.history = list(state["history"])
        self.best_score = state["best_score"]
        self.train_seconds = state["train_seconds"]
        self.compute_seconds = state["compute_seconds"]
        self.train_images = state["train_images"]
        self.epoch_progress = state.get("epoch_progress")
        restore_rng_state(state["rng"])

    # --- the loop ----------------------------------------------------------------------

    def fit(self) -> TrainResult:
        config = self.config
        main = self.context.is_main
        if main:
            save_config(config, self.run_dir / "config.yaml")
        tensorboard = TensorBoardLog(self.run_dir) if config.tensorboard and main else None
        for callback in self.callbacks:
            callback.on_train_start(self)
        try:
            with StopSignals(announce=main) as signals:
                while self.epoch < self.epochs and self.step < self.total_steps:
                    started = time.perf_counter()
                    train_tracker = self._train_one_epoch(signals)
                    if self.stop_signal is not None:
                        self.train_seconds += time.perf_counter() - started
                        return self._stop_mid_epoch()
                    val_tracker = self._evaluate(self.data.val)
                    self.epoch += 1
                    self.train_seconds += time.perf_counter() - started
                    row = self._epoch_row(train_tracker, val_tracker, time.perf_counter() - started)
                    self.history.append(row)
                    self._checkpoint(val_tracker.headline)
                    if main:
                        write_csv(self.history, self.run_dir / "log.csv")
                    if tensorboard is not None:
                        tensorboard.log(row)
                    if not config.quiet and main:
                        print(epoch_line(row, self.epochs), flush=True)
                    for callback in self.callbacks:
                        callback.on_epoch_end(self, row)
                    requested, signum = self.context.any_process(
                        [int(self.stop_requested), signals.received or 0], self.device
                    )
                    if requested or signum:
                        self.stop_signal = signum or None
                        return TrainResult(
                            self.run_dir, {}, self.model, completed=False,
                            stop_signal=self.stop_signal,
                        )  # fmt: skip
        finally:
            if tensorboard is not None:
                tensorboard.close()
        metrics = self._finish()
        for callback in self.callbacks:
            callback.on_train_end(self)
        return TrainResult(self.run_dir, metrics, self.model, completed=True)

    def _train_one_epoch(self, signals: StopSignals) -> MetricTracker:
        """Train until the epoch ends, or until a stop signal after a step that does not end it."""
        config = self.config
        tracker = MetricTracker(self.task, len(self.class_names), self.data.ignore_index)
        # Top-5 of the training batches is not reported; skip its cost.
        tracker.track_top5 = False
        self.model.train()
        resumed, self.epoch_progress = self.epoch_progress, None
        start = self.step - self.epoch * self.steps_per_epoch  # batches done before a stop
        if resumed is not None and self.context.is_main:
            tracker.loss_sum, tracker.samples = resumed["loss_sum"], resumed["samples"]
            tracker.confusion.matrix = resumed["confusion"].clone()
        if self.context.is_distributed:
            seed_everything(self.context.process_seed(config.seed, self.epoch, start))
        steps = min(self.steps_per_epoch - start, self.total_steps - self.step)
        generator = epoch_generator(config.seed, self.epoch)
        batches = self.context.train_batches(
            self.data.train,
            config.batch_size,
            generator=generator,
            start=start,
            generator_state=resumed["generator"] if resumed is not None else None,
            workers=config.workers,
        )
        show = not config.quiet and self.context.is_main
        bar = progress(batches, steps, f"epoch {self.epoch + 1}/{self.epochs}", show)
        started = time.perf_counter()
        images_seen = 0
        for index, (images, targets, global_batch) in enumerate(bar):
            if index == steps:
                break
            images, targets = to_device(images, targets, self.device, self.channels_last)
            loss, scores = self._train_step(images, targets, global_batch, signals)
            tracker.update(scores.detach(), targets, float(loss))
            images_seen += global_batch
            if self.stop_signal is not None and index < steps - 1:
                break
            # A stop after the epoch's last step waits for its validation and checkpoint.
            self.stop_signal = None
            if hasattr(bar, "set_postfix") and (index % 10 == 0 or index == steps - 1):
                rate = images_seen / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(
                    loss=f"{tracker.loss:.4f}", acc=f"{tracker.confusion.accuracy():.4f}",
                    img_s=f"{rate:.0f}",
                )  # fmt: skip
        if hasattr(bar, "close"):
            bar.close()
        self.compute_seconds += time.perf_counter() - started
        self.train_images += images_seen
        self.context.reduce_tracker(tracker, self.device)
        if self.stop_signal is not None:
            self.epoch_progress = {
                "generator": generator.get_state(),  # the augmentation stream's position
                "loss_sum": tracker.loss_sum,
                "samples": tracker.samples,
                "confusion": tracker.confusion.matrix,
            }
        return tracker

    def _train_step(
        self,
        images: Tensor,
        targets: Tensor,
        global_batch: int | None = None,
        signals: StopSignals | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One optimiser step on this process's share of a global batch of ``global_batch``."""
        config = self.config
        with autocast(self.device, config.precision):
            output = self.train_model(images)
        main, *auxiliary = output if isinstance(output, tuple | list) else (output,)
        main = main.float()
        loss = self.loss_fn(main, targets)
        for aux in auxiliary:
            loss = loss + config.aux_weight * self.loss_fn(_match_size(aux.float(), main), targets)
        # Every process must agree before the backward pass, or DDP would wait forever.
        not_finite, signum = self.context.any_process(
            [int(not torch.isfinite(loss)), (signals.received or 0) if signals else 0],
            self.device,
        )
        if not_finite:
            kept = (
                f"the last good checkpoint, {self.run_dir / 'last.pt'}, is kept"
                if self.epoch > 0 or self.resume_state is not None
                else "no epoch had finished, so there is no checkpoint yet"
            )
            value = loss.item() if not torch.isfinite(loss) else "non-finite in another process"
            raise CnnzooError(
                f"the loss became {value} at step {self.step + 1}, so training stopped before "
                f"applying it and {kept}; lower --lr, or add --grad-clip or --warmup"
            )
        self.stop_signal = signum or None
        self.optimizer.zero_grad(set_to_none=True)
        # Weighted so that DDP's average over processes is the global batch's mean gradient.
        share = targets.shape[0]
        (loss * self.context.loss_scale(share, global_batch or share)).backward()
        for callback in self.callbacks:
            callback.on_after_backward(self.step, self.model)
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.detach(), main

    def _stop_mid_epoch(self) -> TrainResult:
        """Save where the epoch stopped in last.pt, so that --resume continues from there."""
        if self.context.is_main:
            payload = self.checkpoint_payload()
            payload["epoch_progress"] = self.epoch_progress
            save_checkpoint(payload, self.run_dir / "last.pt")
        self.context.barrier()
        return TrainResult(
            self.run_dir, {}, self.model, completed=False, stop_signal=self.stop_signal
        )

    def _evaluate(self, dataset: Any) -> MetricTracker:
        """Metrics of ``dataset``: each process evaluates a share, the counts are summed."""
        tracker = evaluate(
            self.model,
            self.context.shard_dataset(dataset),
            task=self.task,
            num_classes=len(self.class_names),
            loss_fn=self.loss_fn,
            ignore_index=self.data.ignore_index,
            batch_size=self.config.eval_batch_size,
            device=self.device,
            precision=self.config.precision,
            channels_last=self.channels_last,
            workers=self.config.workers,
        )
        return self.context.reduce_tracker(tracker, self.device)

    def _epoch_row(
        self, train: MetricTracker, val: MetricTracker, seconds: float
    ) -> dict[str, Any]:
        train_accuracy = "train_top1" if self.task == "classification" else "train_pixel_acc"
        row: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": train.loss,
            train_accuracy: train.confusion.accuracy(),
        }
        for key, value in val.summary().items():
            if not isinstance(value, list):
                row[f"val_{key}"] = value
        row["seconds"] = seconds
        return row

    # --- checkpoints and the final report ----------------------------------------------

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything needed to use the model, or to resume its training exactly."""
        normalization = getattr(self.data.train, "normalization", None)
        return {
            "format": FORMAT_VERSION,
            "model_name": self.config.model,
            "task": self.task,
            "class_names": self.class_names,
            "in_channels": self.in_channels,
            "image_size": list(self.image_size),
            "normalization": (
                {"mean": list(normalization.mean), "std": list(normalization.std)}
                if normalization is not None
                else None
            ),
            "ignore_index": self.data.ignore_index,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history,
            "best_score": self.best_score,
            "train_seconds": self.train_seconds,
            "compute_seconds": self.compute_seconds,
            "train_images": self.train_images,
            "rng": capture_rng_state(),
            "epoch_progress": None,  # set when a signal stopped the run inside an epoch
        }

    def _checkpoint(self, score: float) -> None:
        improved = not math.isnan(score) and score > self.best_score
        if improved:
            self.best_score = score
        if not self.context.is_main:
            return
        payload = self.checkpoint_payload()
        save_checkpoint(payload, self.run_dir / "last.pt")
        if improved:
            save_checkpoint(payload, self.run_dir / "best.pt")

    def _finish(self) -> dict[str, Any]:
        """Evaluate the best checkpoint on the test split; write metrics.json and plots."""
        from cnnzoo.engine.plots import plot_confusion, plot_curves

        best_path = self.run_dir / "best.pt"
        best = self.context.from_main(lambda: _best_weights(best_path), self.device)
        if best is not None:
            load_weights(self.model, best, best_path)
        split = "test" if self.data.test is not None else "val"
        tracker = self._evaluate(self.data.test if self.data.test is not None else self.data.val)
        metrics: dict[str, Any] = {
            "model": self.config.model,
            "data": self.config.data,
            "split": split,
            **tracker.summary(),
            "epochs": self.epoch,
            "train_seconds": round(self.train_seconds, 2),
            "images_per_second": round(self.train_images / max(self.compute_seconds, 1e-9), 1),
            "params": sum(p.numel() for p in self.model.parameters()),
            "image_size": list(self.image_size),
        }
        if not self.context.is_main:
            return metrics
        (self.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if not self.config.plots:
            return metrics
        headline = "top1" if self.task == "classification" else "miou"
        plot_curves(self.history, self.run_dir / "curves.png", headline)
        plot_confusion(
            tracker.confusion.matrix,
            self.class_names,
            self.run_dir / "confusion.png",
            f"{self.config.model} on {self.config.data} ({split})",
        )
        return metrics


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    force: bool = False,
    callbacks: list[Callback] | None = None,
) -> TrainResult:
    """Train ``config`` to the end (or resume it) and return the run's result.

    Started by torchrun, every process calls this and they train together.
    """
    with process_group(pick_device(config.device)) as context:
        trainer = Trainer(config, resume=resume, force=force, callbacks=callbacks, context=context)
        return trainer.fit()


def check_task(entry: ModelEntry, data: DataSplits, data_name: str) -> str:
    """The task, once the model and the loaded data are known to share it."""
    _check_same_task(entry, data.task, data_name)
    return entry.task


def check_data_task(entry: ModelEntry, data_spec: str) -> None:
    """Fail fast, before loading anything, when a registered source has the other task."""
    name = source_name(data_spec)
    source = next((s for s in list_datasets() if s.name == name), None)
    if source is not None:
        _check_same_task(entry, source.task, data_spec)


def _check_same_task(entry: ModelEntry, data_task: str, data_name: str) -> None:
    if data_task != entry.task:
        names = ", ".join(s.name for s in list_datasets(entry.task))
        raise CnnzooError(
            f"{entry.name} is a {entry.task} network but {data_name!r} is a {data_task} "
            f"data set; pick a {entry.task} data set: {names}"
        )


def prepare_run_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Create the run directory; refuse to overwrite a finished or running one."""
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not resume and not force:
        raise CnnzooError(
            f"run directory {run_dir} already holds a run ({', '.join(existing)}); "
            "pass --resume to continue it, --force to start it again, or --out DIR"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CnnzooError(
            f"cannot write to the run directory {run_dir}: {error.strerror or error}; "
            "choose another --out"
        ) from None
    if force and not resume:
        for name in existing:
            (run_dir / name).unlink()


def _read_last_checkpoint(run_dir: Path) -> dict[str, Any]:
    if not (run_dir / "last.pt").is_file():
        raise CnnzooError(f"nothing to resume: {run_dir} holds no last.pt; check --out")
    return load_checkpoint(run_dir / "last.pt")


def _best_weights(path: Path) -> dict[str, Any] | None:
    """What load_weights needs of best.pt (not the optimiser state), if there is one."""
    if not path.is_file():
        return None
    checkpoint = load_checkpoint(path)
    return {key: checkpoint[key] for key in ("model_name", "class_names", "model")}


def _resumed_config(state: dict[str, Any], requested: TrainConfig, run_dir: Path) -> TrainConfig:
    """``requested``, after checking it differs from the checkpoint's only where it may."""
    saved = config_from_dict(state["config"])
    if requested.model != saved.model:
        raise CnnzooError(
            f"the checkpoint in {run_dir} is of {saved.model!r}, not {requested.model!r}; "
            "resume with the same model or choose another --out"
        )
    changed = [
        name
        for name in FIELD_NAMES
        if name not in RESUMABLE_FIELDS and getattr(requested, name) != getattr(saved, name)
    ]
    if changed:
        raise CnnzooError(
            f"a resumed run keeps its recipe; {', '.join(changed)} differ from {run_dir}. "
            f"Only {', '.join(RESUMABLE_FIELDS)} may change; start a new run with --out"
        )
    return requested


def _match_size(aux: Tensor, main: Tensor) -> Tensor:
    """Auxiliary segmentation scores upsampled to the main output's size."""
    if aux.dim() == 4 and aux.shape[-2:] != main.shape[-2:]:
        return F.interpolate(aux, size=main.shape[-2:], mode="bilinear", align_corners=False)
    return aux


def _masks(dataset: Any) -> Any:
    """Every label mask of a segmentation training set, before augmentation."""
    iter_masks = getattr(dataset, "iter_masks", None)
    if callable(iter_masks):
        return iter_masks()
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, Tensor):
        return targets
    return (dataset[index][1] for index in range(len(dataset)))
