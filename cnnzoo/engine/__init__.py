"""Training and evaluation for both tasks: configuration, loop, losses, metrics, checkpoints."""

from cnnzoo.engine.config import TrainConfig, config_from_dict, load_config_file
from cnnzoo.engine.evaluate import evaluate
from cnnzoo.engine.trainer import Callback, Trainer, TrainResult, train

__all__ = [
    "Callback",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "config_from_dict",
    "evaluate",
    "load_config_file",
    "train",
]
