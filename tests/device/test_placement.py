"""Runtime choices: devices, seeds, per-epoch generators, autocast, threads."""

from __future__ import annotations

import pytest
import torch

from cnnzoo.device.placement import (
    autocast,
    epoch_generator,
    pick_device,
    seed_everything,
    set_threads,
)
from cnnzoo.errors import CnnzooError


def test_each_epoch_draws_from_its_own_fixed_generator() -> None:
    first = torch.randperm(10, generator=epoch_generator(3, 1))
    assert torch.equal(first, torch.randperm(10, generator=epoch_generator(3, 1)))
    assert not torch.equal(first, torch.randperm(10, generator=epoch_generator(3, 2)))


def test_seeding_fixes_the_global_generators() -> None:
    seed_everything(5)
    drawn = torch.rand(3)
    seed_everything(5)
    assert torch.equal(drawn, torch.rand(3))


def test_autocast_is_bf16_or_nothing() -> None:
    left = torch.randn(4, 4)
    with autocast("cpu", "bf16"):
        assert (left @ left).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (left @ left).dtype == torch.float32


def test_devices() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(CnnzooError, match="no CUDA device"):
            pick_device("cuda")


def test_threads_are_set_only_when_asked() -> None:
    threads = torch.get_num_threads()
    try:
        set_threads(None)
        assert torch.get_num_threads() == threads
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
