"""Training on several processes with torchrun and DistributedDataParallel.

``torchrun --nproc-per-node N -m cnnzoo train ...`` starts N copies of the
command; each learns its place from the environment variables torchrun sets
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``)
and joins one process group: NCCL between CUDA devices, gloo on CPU. The
model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`,
which averages the gradients of all processes during the backward pass
(Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating Data
Parallel Training", arXiv:2006.15704).

``--batch-size`` is the *global* batch. Every process walks the same
shuffled order, drawn from the same (seed, epoch) generator as a
single-process run, and takes its contiguous share of each global batch --
what :class:`~torch.utils.data.DistributedSampler` does, but batch by batch,
so that the sequence of global batches is exactly the single-process one.
Data sets held in memory draw their per-sample augmentation for the whole
global batch and then slice it. Data read from files is read by each process
for its own share only, by DataLoader workers, and each image draws its
augmentation from a seed of (seed, epoch, image): whichever process or
worker reads it, it is distorted the same way. Either way a network without
dropout or batch normalisation reaches the same weights on N processes as on
one, up to floating-point summation order. Validation and test splits are
cut into one contiguous share per process and their metrics summed.

Each process's loss is scaled by ``world * local / global`` images, so that
DDP's average of the processes' gradients equals the gradient of the mean
loss over the global batch even when the last batch does not divide evenly.
Only the main process (rank 0) writes files or prints; metrics are summed
over processes before anyone reads them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import BadImageLog
from cnnzoo.data.protocol import as_split
from cnnzoo.data.seeding import seed_of
from cnnzoo.errors import CnnzooError
from cnnzoo.evaluation.metrics import MetricTracker
from cnnzoo.runs import plan
from cnnzoo.runs.checkpoint import Checkpoint


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands among the processes of one training run."""

    rank: int = 0  # global index of this process, 0 .. world_size - 1
    world_size: int = 1  # number of processes on all machines together
    local_rank: int = 0  # index of this process on its own machine (picks its GPU)

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that writes the run directory and prints."""
        return self.rank == 0

    def process_seed(self, seed: int, epoch: int, start: int) -> int:
        """A seed for this process's own random draws (dropout, per-sample transforms).

        Processes must not share these draws, or the images of every share would
        get the same dropout masks; the seed is fixed by (seed, epoch, first batch,
        rank), so a distributed run resumed at an epoch boundary repeats itself.
        """
        return seed_of(seed, epoch, start, self.rank)

    # --- batches -----------------------------------------------------------------------

    def steps_per_epoch(self, samples: int, batch_size: int) -> int:
        """Global batches per epoch over this context's processes (:func:`plan.steps_per_epoch`)."""
        return plan.steps_per_epoch(samples, batch_size, self.world_size)

    def shard(self, batch: Tensor) -> Tensor:
        """This process's contiguous share of a global batch (the first shares one longer)."""
        if not self.is_distributed:
            return batch
        return torch.tensor_split(batch, self.world_size)[self.rank]

    def loss_scale(self, local: int, total: int) -> float:
        """Factor that makes DDP's gradient average equal the global batch's mean gradient."""
        return self.world_size * local / total

    def train_batches(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        generator: torch.Generator,
        start: int = 0,
        generator_state: Tensor | None = None,
        workers: int | None = None,
        bad_images: BadImageLog | None = None,
    ) -> Iterator[tuple[Tensor, Tensor, int]]:
        """(images, targets, global batch size) for this process, from batch ``start`` on.

        The order is one permutation drawn from ``generator``, as a single-process
        epoch draws it. ``generator_state``, saved when a run was interrupted after
        batch ``start - 1``, puts the augmentation stream back where it stopped.
        Items read one by one are augmented from a seed of the epoch's generator and
        their index (:class:`SeededItems`), so they need no saved stream. A file
        that cannot be decoded goes to ``bad_images`` (by default: stop).
        """
        samples = len(dataset)
        order = torch.randperm(samples, generator=generator)
        dataset = as_split(dataset)
        if dataset.batch is None:
            # Drawn before the saved state is put back, so a resumed epoch draws it again.
            epoch_key = int(torch.randint(2**62, (), generator=generator))
        if generator_state is not None:
            generator.set_state(generator_state)
        global_batches = [
            order[index * batch_size : (index + 1) * batch_size]
            for index in range(start, self.steps_per_epoch(samples, batch_size))
        ]
        if dataset.batch is not None:
            # Augmentation is drawn for the whole global batch, then sliced: the same
            # images get the same distortions whatever the number of processes.
            for indices in global_batches:
                images, targets = dataset.batch(indices, generator)
                yield self.shard(images), self.shard(targets), len(indices)
            return
        # Files on disk: each process reads only its own share of every global batch.
        shares = [self.shard(indices).tolist() for indices in global_batches]
        loaded = dataset.load_batches(
            shares,
            workers=workers,
            generator=generator,
            epoch_key=epoch_key,
            bad_images=bad_images,
            minimum=2,
        )
        for (images, targets), indices in zip(loaded, global_batches):
            yield images, targets, len(indices)

    def shard_dataset(self, dataset: Dataset) -> Dataset:
        """A contiguous share of an evaluation split, for metrics summed afterwards."""
        if not self.is_distributed:
            return dataset
        indices = torch.tensor_split(torch.arange(len(dataset)), self.world_size)[self.rank]
        return as_split(dataset).subset(indices)

    # --- collective operations -----------------------------------------------------------

    def reduce_tracker(self, tracker: MetricTracker, device: torch.device) -> MetricTracker:
        """Sum the confusion matrix, losses and top-5 counts of all processes into ``tracker``."""
        if not self.is_distributed:
            return tracker
        matrix = tracker.confusion.matrix.to(device)
        dist.all_reduce(matrix)
        tracker.confusion.matrix = matrix.cpu()
        totals = torch.tensor(
            [tracker.loss_sum, tracker.samples, tracker.top5_correct],
            dtype=torch.float64,
            device=device,
        )
        dist.all_reduce(totals)
        tracker.loss_sum = float(totals[0])
        tracker.samples = int(totals[1])
        tracker.top5_correct = int(totals[2])
        return tracker

    def gather(self, value: Any) -> list[Any]:
        """``value`` (plain data) of every process, in rank order."""
        if not self.is_distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def any_process(self, flags: list[int], device: torch.device) -> list[int]:
        """The largest value of each flag over all processes (e.g. "stop", "loss not finite")."""
        if not self.is_distributed:
            return list(flags)
        values = torch.tensor(flags, dtype=torch.int64, device=device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [int(value) for value in values.tolist()]

    def from_main(self, compute: Callable[[], Any], device: torch.device) -> Any:
        """Run ``compute`` on the main process only and hand its result to every process.

        The run directory may exist only on the main process's machine, so only it
        reads checkpoints or checks files. Results travel as ``torch.save`` bytes and
        are read back with ``weights_only=True``: tensors and plain data, never code
        (a :class:`~cnnzoo.runs.checkpoint.Checkpoint` travels in its on-disk form).
        A :class:`CnnzooError` on the main process is raised on every process.
        """
        if not self.is_distributed:
            return compute()
        message: str | None = None
        value: Any = None
        if self.is_main:
            try:
                value = compute()
            except Exception as error:
                message = str(error) if isinstance(error, CnnzooError) else repr(error)
                _broadcast_bytes(_to_bytes({"error": message}), device)
                raise
            if isinstance(value, Checkpoint):
                _broadcast_bytes(_to_bytes({"checkpoint": value.to_dict()}), device)
            else:
                _broadcast_bytes(_to_bytes({"value": value}), device)
            return value
        received = torch.load(
            io.BytesIO(_broadcast_bytes(None, device)), map_location="cpu", weights_only=True
        )
        if "error" in received:
            raise CnnzooError(f"the main process stopped: {received['error']}")
        if "checkpoint" in received:
            return Checkpoint.from_dict(received["checkpoint"])
        return received["value"]

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()


SINGLE_PROCESS = DistributedContext()


def context_from_environment() -> DistributedContext:
    """The context torchrun describes in the environment; one process when it is absent."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise CnnzooError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers; start several "
            "processes with torchrun rather than setting them by hand"
        ) from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise CnnzooError(f"RANK {rank} does not fit WORLD_SIZE {world_size}; use torchrun")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def process_device(context: DistributedContext, device: torch.device) -> torch.device:
    """This process's device: on CUDA, the GPU numbered by its local rank."""
    if device.type != "cuda" or not context.is_distributed:
        return device
    if context.local_rank >= torch.cuda.device_count():
        raise CnnzooError(
            f"process {context.local_rank} on this machine has no GPU of its own "
            f"({torch.cuda.device_count()} found); lower --nproc-per-node"
        )
    torch.cuda.set_device(context.local_rank)
    return torch.device("cuda", context.local_rank)


@contextmanager
def process_group(device: torch.device) -> Iterator[DistributedContext]:
    """Join torchrun's process group for the duration of a run (nothing to do for one process).

    gloo runs on CPU; NCCL is the collective library for NVIDIA GPUs.
    """
    context = context_from_environment()
    if not context.is_distributed or dist.is_initialized():
        yield context
        return
    if not dist.is_available():
        raise CnnzooError("this PyTorch build has no torch.distributed; run a single process")
    device = process_device(context, device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend,
        store=_attempt_store(),
        rank=context.rank,
        world_size=context.world_size,
        device_id=device if device.type == "cuda" else None,
    )
    try:
        yield context
    finally:
        dist.destroy_process_group()


def _attempt_store() -> dist.Store:
    """torchrun's key-value store, seen through a prefix of this attempt's own.

    The processes find each other by writing their addresses into the store
    that torchrun's agent keeps. After a failure torchrun restarts them with the
    same store, where the dead processes' addresses are still written; without a
    prefix of its own, a restarted process can read one of them and fail to
    connect ("Connection refused"), so the restart fails too. torchrun numbers
    its attempts in ``TORCHELASTIC_RESTART_COUNT``.
    """
    store, _, _ = next(dist.rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"cnnzoo/attempt-{attempt}", store)


def wrap_model(
    model: nn.Module, context: DistributedContext, device: torch.device, *, sync_bn: bool
) -> nn.Module:
    """The module a training step calls: DDP around ``model`` when there are several processes.

    ``sync_bn`` turns batch normalisation into SyncBatchNorm, whose statistics
    come from the whole global batch rather than each process's share: small
    per-process segmentation batches otherwise give noisy statistics (Zhang et
    al. 2018, "Context Encoding for Semantic Segmentation", arXiv:1803.08904).
    The conversion keeps parameter and buffer names, so checkpoints are unchanged.
    PyTorch implements SyncBatchNorm for CUDA devices only.
    """
    if not context.is_distributed:
        return model
    if sync_bn and device.type != "cuda":
        raise CnnzooError(
            "--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm runs on GPUs only); "
            "drop it on CPU, where each process normalises over its own share"
        )
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _to_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _broadcast_bytes(data: bytes | None, device: torch.device) -> bytes:
    """Send ``data`` from the main process to all (others pass None and receive it)."""
    length = torch.tensor([len(data) if data is not None else 0], dtype=torch.int64, device=device)
    dist.broadcast(length, src=0)
    if data is not None:
        payload = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    else:
        payload = torch.empty(int(length), dtype=torch.uint8, device=device)
    dist.broadcast(payload, src=0)
    return payload.cpu().numpy().tobytes()
