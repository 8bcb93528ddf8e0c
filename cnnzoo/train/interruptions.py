"""Keeping a run's work through interruptions and before they can happen.

* Ctrl-C (SIGINT) and SIGTERM (what ``kill``, job schedulers and torchrun send)
  do not kill a training run mid-write: :class:`StopSignals` records the signal,
  the loop finishes its current step, saves a resumable ``last.pt`` and exits
  with the shell's status for that signal, 128 + its number (130, 143). A
  second signal aborts at once, for a run that will not stop; copies of the
  first that arrive together are one request (Ctrl-C under torchrun reaches
  each worker from the terminal and again from torchrun, which forwards it).
* The output directory is checked for free space before the first step, so a
  full disk is reported up front instead of as a failed write hours later.

A diverging loss (NaN or infinite) is caught by the training step before the
optimiser applies it, so the weights and the last checkpoint stay good.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType

from torch import nn

from cnnzoo.errors import CnnzooError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Signals this soon after the first are copies of it, not a second request.
REPEAT_WINDOW_SECONDS = 2.0
# Room for the checkpoint files a run holds at once: best.pt, last.pt and the
# temporary file a new last.pt is written to before it replaces the old one.
CHECKPOINT_COPIES = 3
# Each parameter is stored with up to two optimiser tensors of its size (Adam's
# first and second moments, Kingma & Ba 2014); SGD's momentum needs one.
OPTIMIZER_COPIES = 2
LOG_ALLOWANCE_BYTES = 16 * 2**20  # log.csv, plots, config and TensorBoard events


def exit_status(signum: int) -> int:
    """The exit status a shell reports for a process ended by ``signum`` (130 for SIGINT)."""
    return 128 + signum


class StopSignals:
    """While active, SIGINT and SIGTERM ask the run to stop after its current step.

    ``received`` holds the first signal's number. Handlers can only be installed
    from the main thread; elsewhere (a training run inside a worker thread) the
    signals keep their usual meaning.
    """

    def __init__(self, announce: bool = True) -> None:
        self.announce = announce
        self.received: int | None = None
        self._received_at = 0.0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            if time.monotonic() - self._received_at < REPEAT_WINDOW_SECONDS:
                return
            self._restore()
            raise KeyboardInterrupt
        self.received, self._received_at = signum, time.monotonic()
        if self.announce:
            print(
                f"\n{signal.Signals(signum).name} received: finishing the current step and "
                "saving last.pt (send it again to abort without saving)",
                file=sys.stderr,
                flush=True,
            )

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()


def checkpoint_bytes(model: nn.Module) -> int:
    """An upper estimate of one checkpoint's size: the weights and the optimiser's state."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return weights * (1 + OPTIMIZER_COPIES)


def check_free_space(run_dir: Path, model: nn.Module) -> None:
    """Refuse to start when ``run_dir``'s disk cannot hold the run's checkpoints."""
    needed = CHECKPOINT_COPIES * checkpoint_bytes(model) + LOG_ALLOWANCE_BYTES
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise CnnzooError(
            f"{run_dir} has {free / 2**20:.0f} MiB free but the run's checkpoints need about "
            f"{needed / 2**20:.0f} MiB; free some space or choose another --out"
        )
