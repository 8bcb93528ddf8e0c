"""Carrying a run out: the loop (``trainer``), one step (``step``), the optimizer and
schedule (``optim``), losses, the weights' moving average (``ema``), starting from trained
weights (``finetune``), hooks (``callbacks``), several processes (``distributed``) and
interruptions (``interruptions``).

The names below are imported on first use, so that ``import cnnzoo.train`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnzoo.runs.config import TrainConfig, config_from_dict, load_config_file
    from cnnzoo.train.callbacks import Callback
    from cnnzoo.train.trainer import Trainer, TrainResult, train

_HOMES = {
    "Callback": "cnnzoo.train.callbacks",
    "TrainConfig": "cnnzoo.runs.config",
    "config_from_dict": "cnnzoo.runs.config",
    "load_config_file": "cnnzoo.runs.config",
    "TrainResult": "cnnzoo.train.trainer",
    "Trainer": "cnnzoo.train.trainer",
    "train": "cnnzoo.train.trainer",
}
__all__ = [
    "Callback",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "config_from_dict",
    "load_config_file",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'cnnzoo.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
