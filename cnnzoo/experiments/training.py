"""Training a network that an experiment builds itself, through the engine of ``cnnzoo train``.

``cnnzoo.train.train`` builds registered networks by name. Some experiments
compare variants that no registry entry describes (one 5x5 convolution
against two 3x3, DeepLab with its dilation removed); :func:`train_network`
hands such a module and its loaded data to the engine's own
:class:`~cnnzoo.train.trainer.Trainer`, so every variant trains with the
same steps, optimiser, schedule, loss, precision, clipping, auxiliary losses
and label smoothing that a :class:`TrainConfig` gives ``cnnzoo train``. The
run directory is temporary: the experiment keeps the trained module (its
best validation epoch's weights, as ``cnnzoo train`` keeps in best.pt) and
the test split's metrics.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnzoo.data import DataSplits
from cnnzoo.runs.config import TrainConfig
from cnnzoo.runs.directory import scratch_run
from cnnzoo.tasks import get_task
from cnnzoo.train.trainer import Trainer


def train_network(model: nn.Module, data: DataSplits, config: TrainConfig) -> dict[str, Any]:
    """Train ``model`` in place on ``data`` as ``config`` says; the test split's metrics after.

    The metrics are those of the task (top-1 and loss, or mean IoU, pixel
    accuracy, ...) plus the ``steps`` and ``epochs`` trained. ``config.model``
    and ``config.data`` are not used: the module and the data are given.
    """
    with scratch_run(config, "experiment") as quiet:
        trainer = Trainer(quiet, force=True, model=model, data=data)
        metrics = trainer.fit().metrics
    reported = [name for name in get_task(data.task).metrics if name in metrics]
    return {
        **{name: metrics[name] for name in reported},
        "steps": trainer.step,
        "epochs": trainer.epoch,
    }
