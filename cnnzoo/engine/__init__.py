"""Training and evaluation for both tasks, one room per purpose.

``trainer`` the loop; ``step`` the one training step; ``ema`` the weights'
moving average; ``finetune`` starting from trained weights; ``run_dir`` the
run directory and resume policy;
``runtime`` device, seeds, precision, threads; ``layout`` the memory layout;
``callbacks`` hooks and gradient norms; ``evaluate``, ``losses``,
``metrics``, ``optim``, ``checkpoint``, ``distributed``, ``safety``,
``run_log``, ``plots``; ``inference`` uses a trained network.
"""

from cnnzoo.engine.callbacks import Callback
from cnnzoo.engine.config import TrainConfig, config_from_dict, load_config_file
from cnnzoo.engine.evaluate import evaluate
from cnnzoo.engine.trainer import Trainer, TrainResult, train

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
