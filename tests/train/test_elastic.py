"""Surviving a lost worker: torchrun restarts the workers and the run resumes from last.pt.

``torchrun --max-restarts N`` starts every worker again, with the first attempt's
command line, when one of them dies. The end-to-end test SIGKILLs the main process
in the middle of an epoch, over data held in memory and over a class folder streamed
from disk, and checks that the restarted workers finish with the
weights of an uninterrupted run; the others check which run directories a restarted
worker takes up (:func:`~cnnzoo.runs.directory.open_after_restart`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.config import save_config
from cnnzoo.runs.directory import open_after_restart, prepare_run_dir, restarted_by_torchrun
from cnnzoo.train import Callback, TrainConfig, Trainer, train

# LeNet-1989 on digits: 21 steps an epoch, no batch normalisation or dropout, so that two
# processes reach the weights of one.
RECIPE = dict(model="lenet1989", data="digits", image_size=16, epochs=2, batch_size=64)


# --- which run directories a restarted worker takes up ------------------------------------


def test_restarts_are_read_from_torchruns_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    assert not restarted_by_torchrun()
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")  # the first attempt
    assert not restarted_by_torchrun()
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert restarted_by_torchrun()


def _run_dir(root: Path, files: tuple[str, ...], **recipe: object) -> Path:
    root.mkdir()
    save_config(TrainConfig(**{**RECIPE, **recipe}), root / "config.yaml")
    for name in files:
        (root / name).write_bytes(b"")
    return root


def test_a_restarted_worker_takes_up_only_its_own_unfinished_run(tmp_path: Path) -> None:
    requested = TrainConfig(**{**RECIPE, "epochs": 5})  # how long a run lasts may change on resume
    unfinished = _run_dir(tmp_path / "unfinished", ("last.pt", "best.pt", "log.csv"))
    assert open_after_restart(unfinished, requested, force=False) == (True, False)
    # The first attempt's --force cleared the directory already; the restart keeps progress.
    assert open_after_restart(unfinished, requested, force=True) == (True, True)
    prepare_run_dir(unfinished, resume=True, force=True)
    assert (unfinished / "last.pt").exists()

    # Stopped before its first epoch ended: nothing to resume, nothing to lose.
    started = _run_dir(tmp_path / "started", ())
    assert open_after_restart(started, requested, force=False) == (False, True)

    finished = _run_dir(tmp_path / "finished", ("last.pt", "metrics.json"))
    other = _run_dir(tmp_path / "other", ("last.pt",), lr=0.5)
    strange = tmp_path / "strange"
    strange.mkdir()
    (strange / "last.pt").write_bytes(b"")  # no config.yaml says whose run it is
    for refused in (finished, other, strange):
        assert open_after_restart(refused, requested, force=False) == (False, False)
        with pytest.raises(CnnzooError, match="already holds a run"):
            prepare_run_dir(refused, resume=False, force=False)


class _StopAfterOneEpoch(Callback):
    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        trainer.stop_requested = True


class _FirstEpoch(Callback):
    def on_train_start(self, trainer: Trainer) -> None:
        self.epoch = trainer.epoch


def test_the_trainer_resumes_by_itself_when_torchrun_restarted_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    config = TrainConfig(**RECIPE, out=str(tmp_path), quiet=True, plots=False)
    assert not train(config, callbacks=[_StopAfterOneEpoch()]).completed
    with pytest.raises(CnnzooError, match="already holds a run"):
        Trainer(config)  # not restarted: the usual refusal
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    first_epoch = _FirstEpoch()
    result = train(config, callbacks=[first_epoch])
    assert result.completed and first_epoch.epoch == 1
    assert [row["epoch"] for row in Checkpoint.load(tmp_path / "last.pt").history] == [1, 2]
    with pytest.raises(CnnzooError, match="already holds a run"):
        Trainer(config)  # a finished run is never taken up again


# --- a worker SIGKILLed under torchrun --max-restarts 1 ------------------------------------

# The main process kills itself after the backward pass of step KILL_STEP (in the second
# epoch) of the first attempt only; the recipe comes as JSON.
KILLED_ONCE = """
import json, os, signal, sys
from cnnzoo.train import Callback, TrainConfig, train

out, recipe, kill_step = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])


class KillOnce(Callback):
    def on_after_backward(self, step, model):
        if step == kill_step and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":
            os.kill(os.getpid(), signal.SIGKILL)


train(TrainConfig(**recipe, out=out, plots=False), callbacks=[KillOnce()])
"""


@pytest.mark.parametrize(
    ("streamed", "kill_step", "steps"),
    [
        pytest.param(False, 26, 42, id="in-memory"),  # 21 steps an epoch
        # 108 images streamed from disk by a worker per process, in batches of 36: 3 steps
        # an epoch; the killed process leaves its DataLoader worker behind.
        pytest.param(True, 5, 6, id="streamed", marks=pytest.mark.slow),
    ],
)
def test_a_worker_killed_mid_epoch_is_restarted_and_the_run_resumes_from_last_pt(
    tmp_path: Path, launch_torchrun: Callable[[list[str]], subprocess.Popen],
    request: pytest.FixtureRequest, streamed: bool, kill_step: int, steps: int,
) -> None:  # fmt: skip
    recipe = dict(RECIPE)
    if streamed:
        data = request.getfixturevalue("class_folder")
        recipe.update(data=data, batch_size=36, data_mode="stream", workers=1)
    driver = tmp_path / "killed_once.py"
    driver.write_text(KILLED_ONCE)
    launcher = launch_torchrun(
        ["--standalone", "--nproc-per-node", "2", "--max-restarts", "1",
         "--monitor-interval", "0.1", str(driver), str(tmp_path / "ddp"), json.dumps(recipe),
         str(kill_step)]
    )  # fmt: skip
    # The uninterrupted run, here, meanwhile.
    train(TrainConfig(**recipe, out=str(tmp_path / "single"), quiet=True, plots=False))
    stdout, stderr = launcher.communicate(timeout=180)
    assert launcher.returncode == 0, stderr[-3000:]
    assert "exitcode: -9" in stderr  # torchrun saw the first attempt's main process killed
    assert stdout.count("torchrun restarted the workers: resuming") == 1

    state = Checkpoint.load(tmp_path / "ddp" / "last.pt")
    expected = Checkpoint.load(tmp_path / "single" / "last.pt")
    assert state.step == expected.step == steps
    assert [row["epoch"] for row in state.history] == [1, 2]
    difference = max(
        (state.weights[name] - tensor).abs().max().item()
        for name, tensor in expected.weights.items()
    )
    assert difference <= 1e-6
