"""The training loop, for classification and segmentation alike.

Read top-down: :class:`Trainer` sets a run up (data, network, loss,
optimiser, schedule), :meth:`Trainer.fit` runs the epochs, each epoch is
:meth:`Trainer._train_one_epoch` (one :func:`~cnnzoo.train.step.train_step`
per batch) then an evaluation on the validation split and a checkpoint, and
:meth:`Trainer._finish` reports the best checkpoint on the test split.
:func:`train` is the entry point ``cnnzoo train`` calls.

What the loop leaves to others, one room each: the step itself
(:mod:`~cnnzoo.train.step`), the run directory and resume policy
(:mod:`~cnnzoo.runs.directory`), device, seeds, precision and threads
(:mod:`~cnnzoo.device.placement`), the memory layout
(:mod:`~cnnzoo.device.memory_format`), several processes under torchrun
(:mod:`~cnnzoo.train.distributed`) and stopping safely on a signal
(:mod:`~cnnzoo.train.interruptions`).

The loop knows nothing about particular networks. It builds a registered
one by name, or trains a module handed to it (an experiment's own variant)
on data handed to it. Resuming restores weights, optimiser, scheduler, epoch
and every random generator, and each epoch's shuffling and augmentation are
drawn from a generator seeded by (seed, epoch), so 1 + resume + 1 epochs give
the same weights as 2 epochs straight. Under torchrun every process runs this
loop on its share of each global batch; only the main process writes the run
directory, prints and runs callbacks.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.data import DataSplits
from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.batches import to_device
from cnnzoo.data.preprocessing import evaluation_preprocessing
from cnnzoo.device.memory_format import resolve_channels_last, to_channels_last
from cnnzoo.device.placement import (
    check_precision,
    epoch_generator,
    pick_device,
    seed_everything,
    set_threads,
)
from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.evaluate import EvalOptions, evaluate
from cnnzoo.evaluation.losses import (
    LossFunction,
    build_loss,
    median_frequency_weights,
    training_masks,
)
from cnnzoo.evaluation.metrics import MetricTracker
from cnnzoo.models.registry import create_model
from cnnzoo.progress import progress_bar
from cnnzoo.runs import plan
from cnnzoo.runs.checkpoint import (
    Checkpoint,
    TrainingState,
    capture_rng_state,
    load_weights,
    restore_rng_state,
)
from cnnzoo.runs.config import TrainConfig, save_config
from cnnzoo.runs.directory import (
    best_weights,
    open_after_restart,
    prepare_run_dir,
    read_last_checkpoint,
    record_skipped_images,
    restarted_by_torchrun,
)
from cnnzoo.runs.log import TensorBoardLog, epoch_line, write_csv
from cnnzoo.tasks import get_task
from cnnzoo.train.callbacks import Callback, GradientNormLogger
from cnnzoo.train.distributed import (
    SINGLE_PROCESS,
    DistributedContext,
    process_device,
    process_group,
    wrap_model,
)
from cnnzoo.train.ema import build_model_ema, ema_checkpoint
from cnnzoo.train.finetune import (
    StartingWeights,
    freeze_backbone,
    head_of,
    init_from_checkpoint,
    pretrained_start,
)
from cnnzoo.train.interruptions import StopSignals, check_free_space
from cnnzoo.train.optim import build_optimizer, build_scheduler
from cnnzoo.train.step import NonFiniteLoss, StepRecipe, compiled, train_step

__all__ = ["Callback", "TrainResult", "Trainer", "train"]


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]  # what metrics.json holds; empty when the run was stopped early
    model: nn.Module
    completed: bool  # False when a callback or a signal stopped the run before its end
    stop_signal: int | None = None  # the SIGINT/SIGTERM number that stopped the run, if any


class PlanAnswer:
    """A trainer attribute that reads the run plan's answer of the same name (read-only)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, trainer: Trainer | None, owner: type | None = None) -> Any:
        return self if trainer is None else getattr(trainer.plan, self.name)

    def __set__(self, trainer: Trainer, value: object) -> None:
        raise AttributeError(f"{self.name} is the run plan's answer; change the plan instead")


class Trainer:
    """Trains one configuration; :meth:`fit` runs it to the end and returns the result.

    ``model`` and ``data``, when given, are trained instead of building
    ``config.model`` and loading ``config.data``: the module is trained in
    place, and the data's task decides the loss and metrics.
    """

    def __init__(
        self, config: TrainConfig, *, resume: bool = False, force: bool = False,
        callbacks: list[Callback] | None = None, context: DistributedContext | None = None,
        model: nn.Module | None = None, data: DataSplits | None = None,
    ) -> None:  # fmt: skip
        self.context = context or SINGLE_PROCESS
        # What the configuration decides before any data is read (runs/plan.py).
        run = plan.request(
            config, module=None if model is None else type(model).__name__, resume=resume,
            world_size=self.context.world_size,
        )  # fmt: skip
        config = run.config
        self.device = process_device(self.context, pick_device(config.device))
        check_precision(config.precision, self.device)
        self.channels_last = resolve_channels_last(config.channels_last, self.device)
        self.resume_state: Checkpoint | None = None
        if model is None and not resume and restarted_by_torchrun():
            # A restarted worker continues its run; the main process decides for all.
            resume, force = self.context.from_main(
                lambda: open_after_restart(run.run_dir, config, force=force), self.device
            )
            if resume and self.context.is_main and not config.quiet:
                print(f"torchrun restarted the workers: resuming {run.run_dir}", flush=True)
        if resume:
            # Only the main process reads the run directory (it may live on its machine only).
            self.resume_state = self.context.from_main(
                lambda: read_last_checkpoint(run.run_dir), self.device
            )
            run = run.resuming(self.resume_state)
        self.callbacks = list(callbacks or []) if self.context.is_main else []
        if config.log_grad_norms and self.context.is_main:
            self.callbacks.append(GradientNormLogger(config.log_grad_norms))
        self.stop_requested = False
        self.stop_signal: int | None = None
        self.epoch_progress: dict[str, Any] | None = None  # where an interrupted epoch stopped
        set_threads(config.threads)
        self.plan, self.data = self._prepare_data(run, data)
        self.class_names = list(self.data.class_names)
        # Files no decoder reads: stop on the first, or leave them out and list them.
        self.bad_images = BadImageLog(config.skip_bad_images, self.data.skipped_images)
        self.model = self._prepare_model(model)
        # The run directory is made only once data and network are known to load, so that a
        # bad --data or model option leaves no empty directory behind.
        self.context.from_main(
            lambda: prepare_run_dir(self.run_dir, resume=resume, force=force), self.device
        )
        self.context.from_main(lambda: check_free_space(self.run_dir, self.model), self.device)
        # What a training step calls: DDP around the model when there are several processes.
        self.train_model = compiled(
            wrap_model(self.model, self.context, self.device, sync_bn=config.sync_bn),
            config.compile,
        )
        self.loss_fn = self._build_loss()
        self._set_up_schedule()
        if self.resume_state is not None:
            self._restore(self.resume_state)

    # --- set-up ------------------------------------------------------------------------

    # The plan's answers, under the names the loop and its callbacks read.
    config: TrainConfig = PlanAnswer()  # type: ignore[assignment]
    run_dir: Path = PlanAnswer()  # type: ignore[assignment]
    task: str = PlanAnswer()  # type: ignore[assignment]
    model_name: str = PlanAnswer()  # type: ignore[assignment]
    registered: bool = PlanAnswer()  # type: ignore[assignment]  # else a module no entry names
    in_channels: int = PlanAnswer()  # type: ignore[assignment]
    image_size: tuple[int, int] = PlanAnswer()  # type: ignore[assignment]

    def _prepare_data(
        self, run: plan.RunRequest, data: DataSplits | None
    ) -> tuple[plan.RunPlan, DataSplits]:
        """Open the data ``run`` asks for (or ``data``, handed over); the plan resolved on it."""
        return plan.resolve(run, plan.open_data(run, data))

    def _prepare_model(self, model: nn.Module | None) -> nn.Module:
        """The network on its device, from its starting weights, frozen where asked."""
        resuming = self.resume_state is not None
        if model is None:
            model = create_model(
                self.config.model,
                num_classes=len(self.class_names),
                in_channels=self.in_channels,
                # A resumed run takes its weights from last.pt, not from the file again.
                pretrained=None if resuming else self.config.pretrained,
                **self.config.model_options,
            )
        if resuming:
            self.head: tuple[str, ...] = self.resume_state.head
        else:
            self.head = self._start_from(model)
        model = model.to(self.device)
        if self.channels_last:
            example = torch.zeros(2, self.in_channels, *self.image_size, device=self.device)
            model = to_channels_last(model, example)
        # Frozen batch norms keep their statistics: held in evaluation mode while training.
        self.frozen_norms = freeze_backbone(model, self.head) if self.config.freeze_backbone else []
        return model

    def _start_from(self, model: nn.Module) -> tuple[str, ...]:
        """Load ``--init-from``'s weights (``--pretrained`` loaded its own); the head."""
        config = self.config
        start: StartingWeights | None = None
        if config.pretrained is not None:
            start = pretrained_start(model)
        elif config.init_from is not None:
            start = init_from_checkpoint(model, config.init_from, self.task)
        if start is None:
            return ()
        if self.context.is_main and not config.quiet:
            print(start.describe(), flush=True)
        return head_of(model, start)

    def _build_loss(self) -> LossFunction:
        weights = None
        if self.config.class_weights == "median_frequency":
            if self.task != "segmentation":
                raise CnnzooError("median-frequency class weights apply to segmentation data")
            weights = median_frequency_weights(
                training_masks(self.data.train), len(self.class_names), self.data.ignore_index
            )
        return build_loss(
            self.config.loss,
            class_weights=weights,
            ignore_index=self.data.ignore_index,
            label_smoothing=self.config.label_smoothing,
        )

    def _set_up_schedule(self) -> None:
        """Steps, optimiser, schedule and the counters a checkpoint saves."""
        config = self.config
        self.steps_per_epoch = self.plan.batches_per_epoch
        self.total_steps = self.plan.total_steps
        self.epochs = self.plan.epochs
        self.optimizer = build_optimizer(self.model, config, self.head)
        self.scheduler = build_scheduler(
            self.optimizer, config, self.steps_per_epoch, self.total_steps
        )
        self.ema = build_model_ema(self.model, config.model_ema)
        classes = len(self.class_names) if self.task == "classification" else None
        self.recipe = StepRecipe.from_config(
            config, self.loss_fn, self.optimizer, self.scheduler, self.callbacks,
            num_classes=classes, ema=self.ema,
        )  # fmt: skip
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimiser steps
        self.history: list[dict[str, Any]] = []
        self.best_score = -math.inf
        self.best_ema_score = -math.inf  # the moving average's best validation score
        self.train_seconds = 0.0  # wall time of training and validation, over all sessions
        self.compute_seconds = 0.0  # time inside training steps only
        self.train_images = 0

    def _restore(self, state: Checkpoint) -> None:
        path = self.run_dir / "last.pt"
        if state.class_names != self.class_names:
            raise CnnzooError(
                f"{path} was trained on the classes {state.class_names} "
                f"but {self.config.data!r} now has {self.class_names}; resume on the same data"
            )
        training = state.training
        if training is None:  # read_last_checkpoint refuses such a file
            raise CnnzooError(f"{path} holds no training state to resume from")
        load_weights(self.model, state.weights, path, state.describe())
        self.optimizer.load_state_dict(training.optimizer)
        self.scheduler.load_state_dict(training.scheduler)
        self.epoch, self.step = state.epoch, state.step
        self.history = list(state.history)
        self.best_score = state.best_score
        if self.ema is not None:
            self.ema.load_state_dict(training.model_ema)
            self.best_ema_score = state.best_ema_score
        if self.recipe.scaler is not None:
            self.recipe.scaler.load_state_dict(training.grad_scaler)
        self.train_seconds = state.train_seconds
        self.compute_seconds = state.compute_seconds
        self.train_images = state.train_images
        self.epoch_progress = training.epoch_progress
        restore_rng_state(training.rng)

    # --- the loop ----------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train every epoch (or until stopped), then report the best checkpoint."""
        main = self.context.is_main
        if main:
            save_config(self.config, self.run_dir / "config.yaml")
        tensorboard = TensorBoardLog(self.run_dir) if self.config.tensorboard and main else None
        for callback in self.callbacks:
            callback.on_train_start(self)
        try:
            with StopSignals(announce=main) as signals:
                while self.epoch < self.epochs and self.step < self.total_steps:
                    stopped = self._run_epoch(signals, tensorboard)
                    if stopped is not None:
                        return stopped
        finally:
            if tensorboard is not None:
                tensorboard.close()
        metrics = self._finish()
        for callback in self.callbacks:
            callback.on_train_end(self)
        return TrainResult(self.run_dir, metrics, self.model, completed=True)

    def _run_epoch(
        self, signals: StopSignals, tensorboard: TensorBoardLog | None
    ) -> TrainResult | None:
        """Train, validate, checkpoint and log one epoch; a result when the run stops here."""
        main = self.context.is_main
        started = time.perf_counter()
        train_tracker = self._train_one_epoch(signals)
        if self.stop_signal is not None:
            self.train_seconds += time.perf_counter() - started
            return self._stop_mid_epoch()
        val_tracker = ema_tracker = None
        if self.data.val is not None:  # --val-fraction 0: nothing held out, no validation
            val_tracker = self._evaluate(self.data.val)
            ema_tracker = self._evaluate(self.data.val, self.ema.module) if self.ema else None
        self.epoch += 1
        self.train_seconds += time.perf_counter() - started
        row = self._epoch_row(train_tracker, val_tracker, time.perf_counter() - started)
        if ema_tracker is not None:
            row[f"val_ema_{get_task(self.task).headline}"] = ema_tracker.headline
        self.history.append(row)
        self._checkpoint(
            val_tracker.headline if val_tracker else None,
            ema_tracker.headline if ema_tracker else None,
        )
        self._record_skipped_images()
        if main:
            write_csv(self.history, self.run_dir / "log.csv")
        if tensorboard is not None:
            tensorboard.log(row)
        if not self.config.quiet and main:
            print(epoch_line(row, self.epochs), flush=True)
        for callback in self.callbacks:
            callback.on_epoch_end(self, row)
        requested, signum = self.context.any_process(
            [int(self.stop_requested), signals.received or 0], self.device
        )
        if requested or signum:
            self.stop_signal = signum or None
            return TrainResult(
                self.run_dir, {}, self.model, completed=False, stop_signal=self.stop_signal
            )
        return None

    def _train_one_epoch(self, signals: StopSignals) -> MetricTracker:
        """Train until the epoch ends, or until a stop signal after a step that does not end it."""
        config = self.config
        tracker = MetricTracker(self.task, len(self.class_names), self.data.ignore_index)
        tracker.track_top5 = False  # top-5 of the training batches is not reported
        self.model.train()
        for norm in self.frozen_norms:
            norm.eval()
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
            self.data.train, config.batch_size, generator=generator, start=start,
            generator_state=resumed["generator"] if resumed is not None else None,
            workers=config.workers, bad_images=self.bad_images,
        )  # fmt: skip
        show = not config.quiet and self.context.is_main
        description = f"epoch {self.epoch + 1}/{self.epochs}"
        started = time.perf_counter()
        images_seen = 0
        with progress_bar(steps, description, unit="batch", enabled=show) as bar:
            for index, (images, targets, global_batch) in enumerate(batches):
                if index == steps:
                    break
                images, targets = to_device(images, targets, self.device, self.channels_last)
                loss, scores = self._train_step(images, targets, global_batch, signals)
                tracker.update(scores.detach(), targets, float(loss))
                images_seen += global_batch
                bar.update(1)
                if self.stop_signal is not None and index < steps - 1:
                    break
                # A stop after the epoch's last step waits for its validation and checkpoint.
                self.stop_signal = None
                if index % 10 == 0 or index == steps - 1:
                    rate = images_seen / max(time.perf_counter() - started, 1e-9)
                    bar.set_postfix(
                        loss=f"{tracker.loss:.4f}", acc=f"{tracker.confusion.accuracy():.4f}",
                        img_s=f"{rate:.0f}",
                    )  # fmt: skip
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

        def agree(not_finite: bool) -> bool:
            # One exchange per step settles both "the loss is not finite" and "stop".
            received = (signals.received or 0) if signals else 0
            verdict, signum = self.context.any_process([int(not_finite), received], self.device)
            self.stop_signal = signum or None
            return bool(verdict)

        share = targets.shape[0]
        try:
            result = train_step(
                self.train_model, images, targets, self.recipe, step=self.step,
                loss_scale=self.context.loss_scale(share, global_batch or share), agree=agree,
            )  # fmt: skip
        except NonFiniteLoss as error:
            kept = (
                f"the last good checkpoint, {self.run_dir / 'last.pt'}, is kept"
                if self.epoch > 0 or self.resume_state is not None
                else "no epoch had finished, so there is no checkpoint yet"
            )
            raise NonFiniteLoss(error.value, error.step, kept) from None
        self.step += 1
        return result

    def _stop_mid_epoch(self) -> TrainResult:
        """Save where the epoch stopped in last.pt, so that --resume continues from there."""
        if self.context.is_main:
            self.checkpoint(training=True).save(self.run_dir / "last.pt")
        self._record_skipped_images()
        self.context.barrier()
        return TrainResult(
            self.run_dir, {}, self.model, completed=False, stop_signal=self.stop_signal
        )

    def _evaluate(self, dataset: Any, model: nn.Module | None = None) -> MetricTracker:
        """Metrics of ``dataset`` by ``model`` (default: the trained network), over processes."""
        tracker = evaluate(
            model if model is not None else self.model,
            self.context.shard_dataset(dataset),
            task=self.task,
            num_classes=len(self.class_names),
            loss_fn=self.loss_fn,
            ignore_index=self.data.ignore_index,
            options=EvalOptions(
                batch_size=self.config.eval_batch_size,
                memory_mb=self.config.eval_memory_mb,
                device=self.device,
                precision=self.config.precision,
                channels_last=self.channels_last,
                workers=self.config.workers,
                show_progress=not self.config.quiet and self.context.is_main,
                bad_images=self.bad_images,
            ),
        )
        return self.context.reduce_tracker(tracker, self.device)

    def _epoch_row(
        self, train: MetricTracker, val: MetricTracker | None, seconds: float
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": train.loss,
            get_task(self.task).train_accuracy: train.confusion.accuracy(),
        }
        for key, value in val.summary().items() if val is not None else ():
            if not isinstance(value, list):
                row[f"val_{key}"] = value
        row["seconds"] = seconds
        return row

    # --- checkpoints and the final report ----------------------------------------------

    def checkpoint(self, *, training: bool) -> Checkpoint:
        """Everything needed to use the model; with ``training``, to resume it exactly too.

        ``epoch_progress`` is set when a signal stopped the run inside an epoch.
        """
        state = None
        if training:
            state = TrainingState(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                rng=capture_rng_state(),
                grad_scaler=self.recipe.scaler.state_dict() if self.recipe.scaler else None,
                model_ema=self.ema.state_dict() if self.ema is not None else None,
                epoch_progress=self.epoch_progress,
            )
        return Checkpoint(
            model_name=self.model_name,
            task=self.task,
            class_names=list(self.class_names),
            config=self.config.to_dict(),
            weights=self.model.state_dict(),
            # How evaluation fed the network, for everything that loads the run (predict, load).
            preprocessing=evaluation_preprocessing(
                self.task,
                self.in_channels,
                self.image_size,
                self.data.test or self.data.val or self.data.train,
            ),
            image_size=tuple(self.image_size),
            ignore_index=self.data.ignore_index,
            head=tuple(self.head),
            epoch=self.epoch,
            step=self.step,
            history=self.history,
            best_score=self.best_score,
            best_ema_score=self.best_ema_score,
            train_seconds=self.train_seconds,
            compute_seconds=self.compute_seconds,
            train_images=self.train_images,
            training=state,
        )

    def _checkpoint(self, score: float | None, ema_score: float | None = None) -> None:
        """last.pt; best.pt when ``score`` improved; best-ema.pt when the average's did.

        Without validation (``score`` None) every epoch's weights become best.pt: the last
        epoch's are the result, as in He et al.'s CIFAR table.
        """
        improved = score is None or (not math.isnan(score) and score > self.best_score)
        if improved and score is not None:
            self.best_score = score
        ema_improved = ema_score is not None and ema_score > self.best_ema_score
        if ema_improved:
            self.best_ema_score = ema_score
        if not self.context.is_main:
            return
        checkpoint = self.checkpoint(training=True)
        checkpoint.save(self.run_dir / "last.pt")
        if improved:  # best.pt holds what using the network needs: no optimizer state
            checkpoint.without_training().save(self.run_dir / "best.pt")
        if ema_improved:
            ema_checkpoint(checkpoint, self.ema).save(self.run_dir / "best-ema.pt")

    def _record_skipped_images(self) -> int:
        """List every process's skipped files in the run directory; how many it lists."""
        found = self.context.gather(self.bad_images.skipped)
        if not self.context.is_main:
            return 0
        return record_skipped_images(self.run_dir, [image for share in found for image in share])

    def _finish(self) -> dict[str, Any]:
        """Evaluate the best checkpoint on the test split; write metrics.json and plots."""
        best_path = self.run_dir / "best.pt"
        best = self.context.from_main(
            lambda: best_weights(best_path, registered=self.registered), self.device
        )
        if best is not None:
            load_weights(self.model, best.weights, best_path, best.describe())
        split = "test" if self.data.test is not None else "val"
        tracker = self._evaluate(self.data.test if self.data.test is not None else self.data.val)
        metrics: dict[str, Any] = {
            "model": self.model_name,
            "data": self.config.data,
            "split": split,
            **tracker.summary(),
            "epochs": self.epoch,
            "train_seconds": round(self.train_seconds, 2),
            "images_per_second": round(self.train_images / max(self.compute_seconds, 1e-9), 1),
            "params": sum(p.numel() for p in self.model.parameters()),
            "training_images": len(self.data.train),  # after --train-fraction
            "image_size": list(self.image_size),
            "skipped_images": self._record_skipped_images(),
            **self._ema_metrics(),
        }
        if self.context.is_main:
            (self.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
            if self.config.plots:
                self._plot(tracker, split)
        return metrics

    def _ema_metrics(self) -> dict[str, Any]:
        """The test metrics of best-ema.pt as ``ema_top1``, ``ema_miou``, ... (none without EMA)."""
        if self.ema is None:
            return {}
        path = self.run_dir / "best-ema.pt"
        best = self.context.from_main(
            lambda: best_weights(path, registered=self.registered), self.device
        )
        if best is not None:
            load_weights(self.ema.module, best.weights, path, best.describe())
        split = self.data.test if self.data.test is not None else self.data.val
        summary = self._evaluate(split, self.ema.module).summary()
        return {
            f"ema_{key}": value for key, value in summary.items() if not isinstance(value, list)
        }

    def _plot(self, tracker: MetricTracker, split: str) -> None:
        """curves.png (loss and the task's headline metric per epoch) and confusion.png."""
        from cnnzoo.runs.plots import plot_confusion, plot_curves

        plot_curves(self.history, self.run_dir / "curves.png", get_task(self.task).headline)
        plot_confusion(
            tracker.confusion.matrix,
            self.class_names,
            self.run_dir / "confusion.png",
            f"{self.model_name} on {self.config.data} ({split})",
        )


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
