"""What a run records as it goes: ``log.csv``, per-epoch lines and TensorBoard scalars.

The progress bars of each epoch come from :mod:`cnnzoo.progress`, as every bar does.

The CSV log is rewritten from the history kept in the checkpoint after every
epoch, so a resumed run's log holds exactly the epochs its weights have seen.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from cnnzoo.errors import CnnzooError


def write_csv(history: list[dict[str, Any]], path: Path) -> None:
    if not history:
        return
    columns = list(dict.fromkeys(key for row in history for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in history:
            writer.writerow({k: _format(v) for k, v in row.items()})


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """One readable line per epoch, e.g. ``epoch 3/20  train_loss 0.1234  val_top1 0.9710``."""
    skip = ("epoch", "step")
    parts = [f"epoch {row['epoch']}/{epochs}"]
    parts += [f"{key} {_format(value)}" for key, value in row.items() if key not in skip]
    return "  ".join(parts)


class TensorBoardLog:
    """Scalars of each epoch in ``RUN_DIR/tensorboard`` (needs the tensorboard package)."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise CnnzooError(
                "--tensorboard needs the tensorboard package: pip install 'cnnzoo[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key not in ("epoch", "step") and isinstance(value, int | float):
                self.writer.add_scalar(key.replace("_", "/", 1), value, row["step"])

    def close(self) -> None:
        self.writer.close()


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return value
