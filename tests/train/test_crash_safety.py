"""Runs survive SIGKILL, SIGINT and SIGTERM, stop on a diverging loss, and check their disk.

The slow tests run ``cnnzoo train`` in a subprocess whose training step is
slowed down (and reports its step number to a file), so that a signal can be
sent from outside at a known point of an epoch; the others raise the signal
from inside one process. Every interrupted run is resumed and must end with the
weights of a run that was never interrupted.
"""

from __future__ import annotations

import collections
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cnnzoo.train.trainer as trainer_module
from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.train import Callback, TrainConfig, Trainer, train
from cnnzoo.train.interruptions import checkpoint_bytes, exit_status

REPO = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = 21  # 1,294 training digits in batches of 64
RECIPE = dict(
    model="lenet1989", data="digits", image_size=16, epochs=3, batch_size=64, augment="basic",
    quiet=True, plots=False, threads=1,
)  # fmt: skip
FLAGS = [
    "lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "3", "--batch-size", "64",
    "--augment", "basic", "--quiet", "--no-plots", "--threads", "1",
]  # fmt: skip

# Runs the command line with each training step slowed to ~50 ms and its number
# written to a file, so that the test knows where in the run the process is.
SLOW_TRAINING = """
import sys, time
from pathlib import Path
import cnnzoo.train.trainer as trainer_module
from cnnzoo.cli import main

progress = Path(sys.argv[1])
train_step = trainer_module.Trainer._train_step

def slow_step(self, *args, **kwargs):
    result = train_step(self, *args, **kwargs)
    progress.write_text(str(self.step))
    time.sleep(0.05)
    return result

trainer_module.Trainer._train_step = slow_step
sys.exit(main(["train", *sys.argv[2:]]))
"""


def _start_training(run_dir: Path, progress: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_TRAINING, str(progress), *FLAGS, "--out", str(run_dir)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_step(process: subprocess.Popen, progress: Path, step: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if progress.is_file() and progress.read_text() and int(progress.read_text()) >= step:
            return
        if process.poll() is not None:
            pytest.fail(f"training ended before step {step}: {process.stderr.read()[-2000:]}")
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"training did not reach step {step} in time")


@pytest.fixture(scope="module")
def straight_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The final weights of the recipe trained without interruption."""
    run_dir = tmp_path_factory.mktemp("straight")
    train(TrainConfig(**RECIPE, out=str(run_dir)))
    return Checkpoint.load(run_dir / "last.pt").weights


def _assert_same_weights(run_dir: Path, expected: dict[str, torch.Tensor]) -> None:
    weights = Checkpoint.load(run_dir / "last.pt").weights
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name


def _assert_complete_run(run_dir: Path) -> None:
    for name in ("config.yaml", "log.csv", "metrics.json", "best.pt", "last.pt"):
        assert (run_dir / name).is_file(), name
    last = Checkpoint.load(run_dir / "last.pt")
    assert last.epoch == 3 and last.step == 3 * STEPS_PER_EPOCH
    assert [row["epoch"] for row in last.history] == [1, 2, 3]
    assert last.training.epoch_progress is None
    Checkpoint.load(run_dir / "best.pt")


# --- the command line, signalled from outside ------------------------------------------


@pytest.mark.slow  # a fresh interpreter: about 18 s on two busy cores
def test_sigkill_in_the_middle_of_an_epoch_loses_only_that_epoch(
    tmp_path: Path, straight_weights: dict[str, torch.Tensor]
) -> None:
    run_dir, progress = tmp_path / "run", tmp_path / "step"
    process = _start_training(run_dir, progress)
    _wait_for_step(process, progress, STEPS_PER_EPOCH + 5)  # epoch 1 saved, epoch 2 running
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    kept = Checkpoint.load(run_dir / "last.pt")
    assert kept.epoch == 1 and kept.step == STEPS_PER_EPOCH
    assert not (run_dir / "metrics.json").exists()

    assert main(["train", "--resume", "--out", str(run_dir), "--quiet"]) == 0
    _assert_complete_run(run_dir)
    _assert_same_weights(run_dir, straight_weights)


@pytest.mark.slow  # a fresh interpreter: about 18 s on two busy cores
def test_sigint_from_outside_saves_a_resumable_checkpoint_and_exits_with_status_130(
    tmp_path: Path, straight_weights: dict[str, torch.Tensor]
) -> None:
    run_dir, progress = tmp_path / "run", tmp_path / "step"
    process = _start_training(run_dir, progress)
    _wait_for_step(process, progress, 5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert "SIGINT received: finishing the current step and saving last.pt" in stderr
    assert f"continue with: cnnzoo train --resume --out {run_dir}" in stdout
    assert "Traceback" not in stderr

    saved = Checkpoint.load(run_dir / "last.pt")
    assert saved.epoch == 0 and 5 <= saved.step < STEPS_PER_EPOCH
    assert saved.training.epoch_progress is not None  # where in the epoch it stopped

    assert main(["train", "--resume", "--out", str(run_dir), "--quiet"]) == 0
    _assert_complete_run(run_dir)
    _assert_same_weights(run_dir, straight_weights)


# --- crashes, signals, divergence and disk space inside one process -------------------------


class Crash(Callback):
    """Fails after a given step, as a power cut or an out-of-memory kill would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_after_backward(self, step: int, model: torch.nn.Module) -> None:
        if step == self.step:
            raise RuntimeError("simulated crash")


def test_a_crash_mid_epoch_keeps_the_last_epoch_and_resumes_exactly(
    tmp_path: Path, straight_weights: dict[str, torch.Tensor]
) -> None:
    config = TrainConfig(**RECIPE, out=str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, callbacks=[Crash(STEPS_PER_EPOCH + 5)])
    kept = Checkpoint.load(tmp_path / "run" / "last.pt")
    assert kept.epoch == 1 and kept.step == STEPS_PER_EPOCH
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "best.pt", "config.yaml", "last.pt", "log.csv",
    ]  # fmt: skip
    assert train(config, resume=True).completed
    _assert_complete_run(tmp_path / "run")
    _assert_same_weights(tmp_path / "run", straight_weights)


def test_the_command_line_reports_an_interrupt_with_status_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    train_step = trainer_module.Trainer._train_step

    def interrupted_step(self: Trainer, *args: object, **kwargs: object) -> object:
        if self.step == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return train_step(self, *args, **kwargs)

    monkeypatch.setattr(trainer_module.Trainer, "_train_step", interrupted_step)
    assert main(["train", *FLAGS, "--out", str(tmp_path / "run")]) == 130
    output = capsys.readouterr()
    assert "SIGINT received: finishing the current step and saving last.pt" in output.err
    assert f"continue with: cnnzoo train --resume --out {tmp_path / 'run'}" in output.out
    assert Checkpoint.load(tmp_path / "run" / "last.pt").training.epoch_progress is not None


class SendSignal(Callback):
    """Sends ``signum`` to this very process after the given optimiser steps."""

    def __init__(self, signum: int, *steps: int) -> None:
        self.signum, self.steps = signum, steps

    def on_after_backward(self, step: int, model: torch.nn.Module) -> None:
        if step in self.steps:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_epoch_stops_after_the_step_and_resumes_exactly(
    tmp_path: Path, straight_weights: dict[str, torch.Tensor], signum: int
) -> None:
    config = TrainConfig(**RECIPE, out=str(tmp_path / "run"))
    stopped = train(config, callbacks=[SendSignal(signum, STEPS_PER_EPOCH + 3)])
    assert not stopped.completed and stopped.stop_signal == signum
    assert exit_status(stopped.stop_signal) == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
    saved = Checkpoint.load(tmp_path / "run" / "last.pt")
    # The signal lands in the 4th step of epoch 2; the 5th step sees it and is the last.
    assert saved.epoch == 1 and saved.step == STEPS_PER_EPOCH + 5
    assert saved.training.epoch_progress["samples"] == 5 * 64
    assert signal.getsignal(signum) is not None  # the previous handler is back

    resumed = train(config, resume=True)
    assert resumed.completed
    _assert_complete_run(tmp_path / "run")
    _assert_same_weights(tmp_path / "run", straight_weights)


def test_a_signal_during_the_last_step_of_an_epoch_waits_for_its_checkpoint(
    tmp_path: Path,
) -> None:
    config = TrainConfig(**RECIPE, out=str(tmp_path / "run"))
    stopped = train(config, callbacks=[SendSignal(signal.SIGTERM, STEPS_PER_EPOCH - 2)])
    assert stopped.stop_signal == signal.SIGTERM
    saved = Checkpoint.load(tmp_path / "run" / "last.pt")
    assert saved.epoch == 1 and saved.training.epoch_progress is None
    assert len(saved.history) == 1  # validated and logged like any finished epoch


def test_a_second_signal_aborts_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cnnzoo.train.interruptions.REPEAT_WINDOW_SECONDS", 0.0)
    config = TrainConfig(**RECIPE, out=str(tmp_path / "run"))
    # The handler the process had before (SIG_IGN when started in the background by a shell).
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[SendSignal(signal.SIGINT, 2, 3)])
    assert signal.getsignal(signal.SIGINT) is before


def test_copies_of_one_signal_arriving_together_are_one_request(tmp_path: Path) -> None:
    # Ctrl-C under torchrun: from the terminal and forwarded by torchrun, a few ms apart.
    config = TrainConfig(**RECIPE, out=str(tmp_path / "run"))
    stopped = train(config, callbacks=[SendSignal(signal.SIGINT, 2), SendSignal(signal.SIGINT, 2)])
    assert stopped.stop_signal == signal.SIGINT
    assert Checkpoint.load(tmp_path / "run" / "last.pt").step == 4


class PoisonWeights(Callback):
    """Sets a weight to NaN after a given step, as a diverging optimiser would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_after_backward(self, step: int, model: torch.nn.Module) -> None:
        if step == self.step:
            with torch.no_grad():
                next(model.parameters()).fill_(math.nan)


def test_a_diverging_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path: Path,
) -> None:
    config = TrainConfig(**RECIPE, out=str(tmp_path / "run"))
    # Poisoned during the 26th step, so the 27th step's loss is NaN.
    with pytest.raises(CnnzooError, match=r"loss became nan at step 27.*last good checkpoint"):
        train(config, callbacks=[PoisonWeights(STEPS_PER_EPOCH + 4)])
    kept = Checkpoint.load(tmp_path / "run" / "last.pt")
    assert kept.epoch == 1
    assert all(torch.isfinite(tensor).all() for tensor in kept.weights.values())
    with pytest.raises(CnnzooError, match="no epoch had finished, so there is no checkpoint"):
        train(TrainConfig(**RECIPE, out=str(tmp_path / "early")), callbacks=[PoisonWeights(0)])


def test_the_command_line_reports_a_diverging_loss_as_one_line_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    flags = [*FLAGS, "--lr", "1e30", "--schedule", "none", "--out", str(tmp_path / "run")]
    assert main(["train", *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("cnnzoo: error: the loss became") and "Traceback" not in error


def test_a_disk_too_full_for_the_checkpoints_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(
        "cnnzoo.train.interruptions.shutil.disk_usage", lambda path: usage(2**30, 2**30, 2**20)
    )
    with pytest.raises(CnnzooError, match="has 1 MiB free but the run's checkpoints need about"):
        Trainer(TrainConfig(**RECIPE, out=str(tmp_path / "run")))


def test_the_checkpoint_estimate_covers_weights_and_optimizer_state() -> None:
    model = torch.nn.Linear(10, 5)  # 55 float32 parameters
    assert checkpoint_bytes(model) == 55 * 4 * 3
