"""Distributed training: torchrun on two CPU processes matches one process, batch for batch.

The end-to-end tests start ``torchrun --nproc-per-node 2 -m cnnzoo train`` with gloo
over data held in memory and over a class folder streamed from disk, and two torchrun
launchers standing for two machines over image/mask files and over a streamed class
folder, and compare their final weights with a single-process run of the same global
batch and seed. The other tests
check the pieces without a process group (sharding, loss weighting, the environment)
or with two spawned gloo processes (metric reduction, flags, results and errors
handed from the main process, SyncBatchNorm).
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from cnnzoo.cli import build_parser
from cnnzoo.cli.train import build_config
from cnnzoo.data import load_data, plain_request
from cnnzoo.data.batches import iterate_batches
from cnnzoo.data.in_memory import InMemoryImages, Normalization
from cnnzoo.data.transforms import augment_policy
from cnnzoo.device.placement import epoch_generator
from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.metrics import MetricTracker
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.train import TrainConfig, Trainer, train
from cnnzoo.train.distributed import (
    SINGLE_PROCESS,
    DistributedContext,
    context_from_environment,
    wrap_model,
)

REPO = Path(__file__).resolve().parents[2]


def _images(count: int = 37, side: int = 8) -> InMemoryImages:
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (count, 1, side, side), dtype=torch.uint8, generator=generator)
    return InMemoryImages(
        pixels,
        torch.arange(count) % 3,
        Normalization((0.5,), (0.25,)),
        augment=augment_policy("strong", mirror_invariant=True),
    )


def _contexts(world: int) -> list[DistributedContext]:
    return [DistributedContext(rank=rank, world_size=world) for rank in range(world)]


# --- the whole command under torchrun -----------------------------------------------------


def _train_arguments(recipe: dict[str, object]) -> list[str]:
    """``cnnzoo train`` arguments that set ``recipe``'s TrainConfig fields."""
    arguments = ["train", str(recipe["model"])]
    for key, value in recipe.items():
        if key != "model":
            arguments += [f"--{key.replace('_', '-')}", str(value)]
    return arguments


@pytest.mark.parametrize(
    "streamed",
    [
        pytest.param(False, id="in-memory"),
        # Each process streams its share from disk through a DataLoader worker of its own.
        pytest.param(True, id="streamed", marks=pytest.mark.slow),
    ],
)
def test_torchrun_on_two_processes_reaches_the_single_process_weights(
    tmp_path: Path, launch_torchrun: Callable[[list[str]], subprocess.Popen],
    request: pytest.FixtureRequest, streamed: bool,
) -> None:  # fmt: skip
    recipe = dict(model="lenet5", data="mnist5k", iterations=6, batch_size=32, augment="basic")
    if streamed:
        recipe.update(data=request.getfixturevalue("class_folder"), data_mode="stream", workers=1)
    # The two-process run starts first; the single-process one runs here meanwhile.
    ddp = launch_torchrun(
        ["--standalone", "--nproc-per-node", "2", "-m", "cnnzoo", *_train_arguments(recipe),
         "--out", str(tmp_path / "ddp"), "--quiet", "--no-plots"]
    )  # fmt: skip
    single = train(TrainConfig(**recipe, out=str(tmp_path / "single"), quiet=True, plots=False))
    stdout, stderr = ddp.communicate(timeout=240)
    assert ddp.returncode == 0, stderr[-3000:]
    assert stdout.count("run directory:") == 1  # only the main process reports

    ddp_state = Checkpoint.load(tmp_path / "ddp" / "last.pt")
    single_state = Checkpoint.load(tmp_path / "single" / "last.pt")
    assert ddp_state.step == single_state.step == 6
    difference = max(
        (ddp_state.weights[name] - tensor).abs().max().item()
        for name, tensor in single_state.weights.items()
    )
    assert difference <= 1e-5
    # Training and test metrics are summed over both processes: the same as one process's.
    assert ddp_state.history[0]["train_top1"] == single_state.history[0]["train_top1"]
    assert ddp_state.history[0]["train_loss"] == pytest.approx(
        single_state.history[0]["train_loss"], rel=1e-5
    )
    ddp_metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp_metrics["top1"] == pytest.approx(single.metrics["top1"], abs=1e-3)


# Rank 0 reports its step to a file and every step takes at least 50 ms, so that a test
# can interrupt the run at a known point.
SLOW_TRAINING = """
import os, sys, time
from pathlib import Path
import cnnzoo.train.trainer as trainer_module
from cnnzoo.cli import main

progress = Path(sys.argv[1])
train_step = trainer_module.Trainer._train_step

def slow_step(self, *args, **kwargs):
    result = train_step(self, *args, **kwargs)
    if os.environ["RANK"] == "0":
        progress.write_text(str(self.step))
    time.sleep(0.05)
    return result

trainer_module.Trainer._train_step = slow_step
sys.exit(main(["train", *sys.argv[2:]]))
"""


@pytest.mark.slow  # three torchrun launches: about a minute on two busy cores
def test_ctrl_c_under_torchrun_saves_once_and_the_run_resumes(tmp_path: Path) -> None:
    flags = [
        "lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "2",
        "--batch-size", "64", "--out", str(tmp_path / "ddp"), "--quiet", "--no-plots",
    ]  # fmt: skip
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    driver, progress = tmp_path / "slow_training.py", tmp_path / "step"
    driver.write_text(SLOW_TRAINING)
    # A session of its own stands for a terminal: Ctrl-C signals its whole process group.
    run = subprocess.Popen(
        [*launcher, str(driver), str(progress), *flags], env=environment, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not (progress.is_file() and progress.read_text() and int(progress.read_text()) >= 5):
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()[-3000:]
        time.sleep(0.01)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    # torchrun prints its own SignalException; the workers save instead of aborting.
    assert "SIGINT received" in stderr and "KeyboardInterrupt" not in stderr
    saved = Checkpoint.load(tmp_path / "ddp" / "last.pt")
    assert saved.training.epoch_progress is not None and 5 <= saved.step < 21

    resumed = subprocess.run(
        [*launcher, "-m", "cnnzoo", "train", "--resume", "--out", str(tmp_path / "ddp"), "--quiet"],
        env=environment, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    config = TrainConfig(
        model="lenet1989", data="digits", image_size=16, epochs=2, batch_size=64, quiet=True,
        plots=False, out=str(tmp_path / "single"),
    )  # fmt: skip
    train(config)
    expected = Checkpoint.load(tmp_path / "single" / "last.pt").weights
    weights = Checkpoint.load(tmp_path / "ddp" / "last.pt").weights
    assert max((weights[k] - expected[k]).abs().max().item() for k in expected) <= 1e-5


# --- files read from disk, on one machine and on two ------------------------------------

# A network without batch normalisation or dropout, trained by every process on files read
# from disk with random crops and flips: an image/mask folder (random scale, crop and flips)
# or a class folder streamed by the streaming loader (RandomResizedCrop and flips).
FILE_TRAINING = """
import sys
import torch
from torch import nn
from cnnzoo.data import load_data, plain_request
from cnnzoo.train import TrainConfig, Trainer
from cnnzoo.train.distributed import process_group


def run(data, out, batch_size):
    config = TrainConfig(
        data=data, out=out, epochs=2, batch_size=int(batch_size), quiet=True, plots=False
    )
    request = plain_request(
        image_size=(12, 12), in_channels=3, augment="basic", seed=0, data_mode="stream", workers=0
    )
    splits = load_data(data, request)
    classes = len(splits.class_names)
    # Class scores are the label map's mean: the same network ends both tasks.
    pooled = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if splits.task == "classification" else []
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 1), *pooled]
    with process_group(torch.device("cpu")) as context:
        trainer = Trainer(config, context=context, model=nn.Sequential(*layers), data=splits)
        return trainer.fit().metrics


if __name__ == "__main__":
    run(*sys.argv[1:])
"""


def _mask_folder(root: Path, count: int = 20, size: tuple[int, int] = (16, 20)) -> str:
    """``folder:IMAGES,MASKS`` of ``count`` colour images whose masks mark their red pixels."""
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for index in range(count):
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{index:02}.png")
        mask = np.where(pixels[:, :, 0] > 128, 255, 0).astype(np.uint8)
        Image.fromarray(mask).save(root / "masks" / f"{index:02}.png")
    return f"folder:{root / 'images'},{root / 'masks'}"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("image/mask folder", id="masks"),
        pytest.param("streamed class folder", id="streamed", marks=pytest.mark.slow),
    ],
)
def files_on_disk(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[str, int]:
    """(``--data``, batch size): 3 steps an epoch, of 18 pairs or of 108 class images."""
    if request.param == "image/mask folder":
        return _mask_folder(tmp_path_factory.mktemp("mask-folder")), 6
    return request.getfixturevalue("class_folder"), 36


@pytest.fixture(scope="module")
def file_training(tmp_path_factory: pytest.TempPathFactory) -> Path:
    driver = tmp_path_factory.mktemp("driver") / "file_training.py"
    driver.write_text(FILE_TRAINING)
    return driver


@pytest.fixture(scope="module")
def one_process_on_files(
    files_on_disk: tuple[str, int], file_training: Path, tmp_path_factory
) -> Path:
    """The run directory of the file-backed recipe trained by this process alone."""
    out = tmp_path_factory.mktemp("one-process")
    data, batch_size = files_on_disk
    runpy.run_path(str(file_training))["run"](data, str(out), batch_size)
    return out


def _finish(launchers: list[subprocess.Popen]) -> None:
    for launcher in launchers:
        _, stderr = launcher.communicate(timeout=180)
        assert launcher.returncode == 0, stderr[-3000:]


def _same_training(run: Path, reference: Path) -> None:
    """Same steps, weights to float summation order, and the same summed metrics."""
    # The image/mask run trains a module handed to the trainer, which no registry entry names.
    state, expected = (Checkpoint.load(d / "last.pt", registered=False) for d in (run, reference))
    assert state.step == expected.step == 6  # 2 epochs of 3 steps
    difference = max(
        (state.weights[name] - tensor).abs().max().item()
        for name, tensor in expected.weights.items()
    )
    assert difference <= 1e-5
    metrics, expected_metrics = (
        json.loads((d / "metrics.json").read_text()) for d in (run, reference)
    )
    headline = "miou" if "miou" in expected_metrics else "top1"
    assert metrics[headline] == pytest.approx(expected_metrics[headline], abs=1e-4)
    assert metrics["loss"] == pytest.approx(expected_metrics["loss"], rel=1e-4)


def test_two_machines_reading_files_reach_the_single_process_weights(
    tmp_path: Path, files_on_disk: tuple[str, int], file_training: Path,
    request: pytest.FixtureRequest, launch_torchrun: Callable[[list[str]], subprocess.Popen],
) -> None:  # fmt: skip
    # Two launchers of one process each stand for two machines meeting at node 0's address
    # on loopback: two processes, each reading its own share of the files, as on one machine.
    rendezvous = ["--nnodes", "2", "--nproc-per-node", "1", "--master-addr", "127.0.0.1",
                  "--master-port", str(_free_port())]  # fmt: skip
    data, batch_size = files_on_disk
    command = [str(file_training), data, str(tmp_path / "nodes"), str(batch_size)]
    launchers = [launch_torchrun([*rendezvous, "--node-rank", node, *command]) for node in "01"]
    reference = request.getfixturevalue("one_process_on_files")  # trained meanwhile
    _finish(launchers)
    _same_training(tmp_path / "nodes", reference)


def test_each_process_reads_and_augments_its_share_of_file_batches_as_one_process_would(
    tmp_path: Path,
) -> None:
    request = plain_request(image_size=(12, 12), in_channels=3, augment="basic", seed=0)
    train_split = load_data(_mask_folder(tmp_path, count=13), request).train
    assert train_split.batch is None  # read from disk item by item

    def epoch(context: DistributedContext, workers: int = 0) -> list:
        generator = torch.Generator().manual_seed(4)
        return list(context.train_batches(train_split, 4, generator=generator, workers=workers))

    single = epoch(SINGLE_PROCESS)
    shares = [epoch(context) for context in _contexts(2)]
    assert [len(targets) for _, targets, _ in single] == [4, 4, 4]  # 12 of 13 kept
    for step, (images, masks, _) in enumerate(single):
        assert torch.equal(torch.cat([share[step][0] for share in shares]), images)
        assert torch.equal(torch.cat([share[step][1] for share in shares]), masks)
    # Worker processes draw the same augmentation as the training process itself.
    with_workers = epoch(_contexts(2)[1], workers=2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(with_workers, shares[1]))


class _CountingReads(Dataset):
    """Records which items are read; each item is its index and a random draw."""

    def __init__(self, count: int) -> None:
        self.count, self.reads = count, []

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        self.reads.append(index)
        return torch.rand(1), torch.tensor(index)


def test_a_file_epoch_reads_every_item_once_in_an_order_drawn_from_seed_and_epoch() -> None:
    def reads(epoch: int) -> list[int]:
        dataset = _CountingReads(24)
        for context in _contexts(2):
            for _ in context.train_batches(dataset, 6, generator=epoch_generator(7, epoch)):
                pass
        return dataset.reads

    first, second = reads(0), reads(1)
    assert sorted(first) == sorted(second) == list(range(24))  # every item once, by one process
    assert first != second  # reshuffled every epoch
    assert reads(1) == second  # from (seed, epoch) alone


def test_evaluation_shares_of_a_file_split_are_its_items(tmp_path: Path) -> None:
    val_split = load_data(
        _mask_folder(tmp_path, count=20), plain_request(in_channels=3, val_fraction=0.25)
    ).val
    shares = [context.shard_dataset(val_split) for context in _contexts(2)]
    assert [len(share) for share in shares] == [3, 2]
    items = [share[index] for share in shares for index in range(len(share))]
    for index, (image, mask) in enumerate(items):
        assert torch.equal(image, val_split[index][0]) and torch.equal(mask, val_split[index][1])


# --- sharding and loss weighting ------------------------------------------------------


def test_process_shares_reassemble_the_single_process_batches_and_augmentation() -> None:
    dataset = _images(count=40)
    batch_size, world = 12, 2
    expected = list(
        iterate_batches(
            dataset, batch_size, shuffle=True, generator=torch.Generator().manual_seed(5),
            training=True,
        )
    )  # fmt: skip
    shares = [
        list(context.train_batches(dataset, batch_size, generator=torch.Generator().manual_seed(5)))
        for context in _contexts(world)
    ]
    assert len(expected) == len(shares[0]) == len(shares[1]) == 4  # 40 = 3 x 12 + 4, two each
    for step, (images, targets) in enumerate(expected):
        parts = [share[step] for share in shares]
        assert all(global_batch == targets.shape[0] for _, _, global_batch in parts)
        assert torch.equal(torch.cat([p[0] for p in parts]), images)
        assert torch.equal(torch.cat([p[1] for p in parts]), targets)


def test_files_on_disk_are_read_by_each_process_for_its_own_share_only() -> None:
    dataset = TensorDataset(torch.arange(20).float().view(20, 1), torch.arange(20))
    single = [
        targets
        for _, targets, _ in SINGLE_PROCESS.train_batches(
            dataset, 8, generator=torch.Generator().manual_seed(3)
        )
    ]
    shares = [
        [t for _, t, _ in c.train_batches(dataset, 8, generator=torch.Generator().manual_seed(3))]
        for c in _contexts(2)
    ]
    assert [len(t) for t in single] == [8, 8, 4]
    for step, targets in enumerate(single):
        assert torch.equal(torch.cat([share[step] for share in shares]), targets)


def test_a_last_batch_too_small_for_two_images_per_process_is_left_out() -> None:
    # 100 = 3 x 32 + 4: four images give two processes two each, but not three.
    assert SINGLE_PROCESS.steps_per_epoch(100, 32) == 4
    assert DistributedContext(rank=0, world_size=2).steps_per_epoch(100, 32) == 4
    assert DistributedContext(rank=0, world_size=3).steps_per_epoch(100, 32) == 3
    assert DistributedContext(rank=0, world_size=2).steps_per_epoch(96, 32) == 3
    with pytest.raises(CnnzooError, match="5 training images cannot give each of 3 processes"):
        DistributedContext(rank=0, world_size=3).steps_per_epoch(5, 32)


def test_weighted_losses_average_to_the_global_batch_mean() -> None:
    losses = torch.rand(11, dtype=torch.float64)
    for world in (2, 3, 4):
        contexts = _contexts(world)
        shares = [context.shard(losses) for context in contexts]
        # DDP averages the processes' gradients, i.e. the mean of their weighted losses.
        weighted = [
            share.mean() * context.loss_scale(len(share), len(losses))
            for share, context in zip(shares, contexts)
        ]
        assert torch.stack(weighted).mean().item() == pytest.approx(losses.mean().item())


def test_an_interrupted_epoch_continues_with_the_same_batches() -> None:
    dataset = _images()
    straight = list(
        SINGLE_PROCESS.train_batches(dataset, 8, generator=torch.Generator().manual_seed(2))
    )
    generator = torch.Generator().manual_seed(2)
    head = SINGLE_PROCESS.train_batches(dataset, 8, generator=generator)
    next(head), next(head)  # two steps, then the run stops and saves the generator
    state = generator.get_state()
    tail = list(
        SINGLE_PROCESS.train_batches(
            dataset, 8, generator=torch.Generator().manual_seed(2), start=2, generator_state=state
        )
    )
    assert len(tail) == len(straight) - 2
    for (images, targets, _), (expected_images, expected_targets, _) in zip(tail, straight[2:]):
        assert torch.equal(images, expected_images) and torch.equal(targets, expected_targets)


def test_evaluation_shares_partition_the_split() -> None:
    dataset = _images(count=10)
    shares = [context.shard_dataset(dataset) for context in _contexts(3)]
    assert [len(share) for share in shares] == [4, 3, 3]
    assert torch.equal(torch.cat([share.targets for share in shares]), dataset.targets)
    plain = TensorDataset(torch.arange(10))
    parts = [context.shard_dataset(plain) for context in _contexts(3)]
    assert [int(item[0]) for part in parts for item in part] == list(range(10))


# --- configuration ----------------------------------------------------------------------


def test_the_environment_torchrun_sets_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert context_from_environment() == SINGLE_PROCESS
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    context = context_from_environment()
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    assert context.is_distributed and not context.is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(CnnzooError, match="RANK 4 does not fit WORLD_SIZE 4"):
        context_from_environment()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(CnnzooError, match="whole numbers"):
        context_from_environment()


def test_the_global_batch_must_give_every_process_two_images(tmp_path: Path) -> None:
    config = TrainConfig(model="lenet1989", data="digits", batch_size=8, out=str(tmp_path))
    with pytest.raises(CnnzooError, match="global batch; 8 cannot give each of 8 processes"):
        Trainer(config, context=DistributedContext(rank=0, world_size=8))


def test_sync_bn_is_a_flag_and_one_process_trains_the_model_itself() -> None:
    args = build_parser().parse_args(["train", "segnet_basic", "--data", "shapes", "--sync-bn"])
    assert build_config(args).sync_bn
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert wrap_model(model, SINGLE_PROCESS, torch.device("cpu"), sync_bn=True) is model


# --- collective operations on two spawned gloo processes ------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _collectives(rank: int, port: int, results: dict) -> None:
    """One of two processes: every collective the trainer relies on, results to the parent."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    context = DistributedContext(rank=rank, world_size=2)
    cpu = torch.device("cpu")
    try:
        tracker = MetricTracker("classification", 5)
        scores = torch.eye(5)[[rank, 4]]  # rank 0 predicts 0 and 4, rank 1 predicts 1 and 4
        tracker.update(scores, torch.tensor([rank, 0]), loss=float(rank + 1))
        context.reduce_tracker(tracker, cpu)
        flags = context.any_process([rank, 0, 7 * rank], cpu)
        shared = context.from_main(lambda: {"weights": torch.full((2,), 3.0), "epoch": 4}, cpu)
        try:
            context.from_main(lambda: _refuse(), cpu)
            error = None
        except CnnzooError as raised:
            error = str(raised)
        model = wrap_model(nn.Sequential(nn.Conv2d(1, 2, 3)), context, cpu, sync_bn=False)
        try:
            wrap_model(nn.Sequential(nn.BatchNorm2d(2)), context, cpu, sync_bn=True)
            sync_bn_error = None
        except CnnzooError as raised:
            sync_bn_error = str(raised)
        results[rank] = {
            "matrix": tracker.confusion.matrix.tolist(),
            "loss": tracker.loss,
            "top5": tracker.top5_correct,
            "flags": flags,
            "shared": (shared["weights"].tolist(), shared["epoch"]),
            "error": error,
            "ddp": isinstance(model, nn.parallel.DistributedDataParallel),
            "sync_bn_error": sync_bn_error,
            "gathered": context.gather([f"skipped by {rank}"]),
        }
    finally:
        dist.destroy_process_group()


def _refuse() -> None:
    raise CnnzooError("run directory runs/x already holds a run")


@pytest.mark.slow  # two fresh interpreters importing torch: about 30 s on two busy cores
def test_metrics_flags_and_main_process_results_reach_every_process() -> None:
    results = mp.Manager().dict()
    mp.spawn(_collectives, args=(_free_port(), results), nprocs=2, join=True)
    main, other = results[0], results[1]
    # The main process raises its own error; the other is told the main process stopped.
    assert main.pop("error") == "run directory runs/x already holds a run"
    assert (
        other.pop("error") == "the main process stopped: run directory runs/x already holds a run"
    )
    assert main == other
    outcome = main
    expected = torch.zeros(5, 5, dtype=torch.int64)
    expected[0, 0] = expected[1, 1] = 1  # each rank's first image, right
    expected[0, 4] = 2  # each rank's second image (class 0) predicted as 4
    assert outcome["matrix"] == expected.tolist()
    assert outcome["loss"] == pytest.approx((1 * 2 + 2 * 2) / 4)
    assert outcome["top5"] == 4
    assert outcome["flags"] == [1, 0, 7]
    assert outcome["shared"] == ([3.0, 3.0], 4)
    assert outcome["ddp"]
    assert "needs CUDA devices" in outcome["sync_bn_error"]
    assert outcome["gathered"] == [["skipped by 0"], ["skipped by 1"]]  # skipped files, say
