"""Training a network that an experiment builds itself, with the engine's recipe.

``cnnzoo.engine.train`` builds registered networks by name. Some experiments
compare variants that no registry entry describes (one 5x5 convolution
against two 3x3, DeepLab with its dilation removed); :func:`train_network`
trains such a module with the same optimiser, schedule, loss, batching and
metrics that ``cnnzoo train`` uses for a :class:`TrainConfig`, so every
variant of an experiment follows one recipe. It keeps no checkpoints and
reports the final weights on the test split.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnzoo.data import DataSplits
from cnnzoo.engine.config import TrainConfig
from cnnzoo.engine.evaluate import batches_per_epoch, evaluate, iterate_batches, main_output
from cnnzoo.engine.losses import build_loss
from cnnzoo.engine.optim import build_optimizer, build_scheduler
from cnnzoo.engine.trainer import epoch_generator, seed_everything


def train_network(model: nn.Module, data: DataSplits, config: TrainConfig) -> dict[str, Any]:
    """Train ``model`` on ``data`` as ``config`` says; the test split's metrics afterwards.

    Uses the configuration's epochs (or iterations), batch size, optimiser,
    learning-rate schedule, loss and seed; the model stays on the CPU.
    """
    config.validate()
    seed_everything(config.seed)
    loss_fn = build_loss(config.loss, ignore_index=data.ignore_index)
    steps_per_epoch = batches_per_epoch(len(data.train), config.batch_size)
    total_steps = config.iterations or config.epochs * steps_per_epoch
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch, total_steps)
    step, epoch = 0, 0
    model.train()
    while step < total_steps:
        batches = iterate_batches(
            data.train,
            config.batch_size,
            shuffle=True,
            generator=epoch_generator(config.seed, epoch),
            training=True,
        )
        for images, targets in batches:
            if step == total_steps:
                break
            loss = loss_fn(main_output(model(images)), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
        epoch += 1
    test = data.test if data.test is not None else data.val
    tracker = evaluate(
        model,
        test,
        task=data.task,
        num_classes=len(data.class_names),
        loss_fn=loss_fn,
        ignore_index=data.ignore_index,
        batch_size=config.eval_batch_size,
    )
    return {**tracker.summary(), "steps": step, "epochs": epoch}
