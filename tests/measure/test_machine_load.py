"""The load recorded around a timing: other processes' cores, not the timed work's own."""

from __future__ import annotations

import pytest

from cnnzoo.measure import load as machine
from cnnzoo.measure.load import LoadMeter, MachineLoad


def test_busy_follows_other_processes_when_known_else_the_load_average() -> None:
    # A benchmark on both cores drives the load average to 2 by itself: not "under load".
    assert not MachineLoad(2.0, 2.1, 2, other_cores=0.1).busy
    assert MachineLoad(0.2, 0.3, 2, other_cores=1.5).busy
    assert MachineLoad(3.5, 4.0, 2).busy and not MachineLoad(0.1, 0.2, 2).busy
    assert "other processes used 1.50 cores" in MachineLoad(0.2, 0.3, 2, 1.5).describe()
    assert MachineLoad(0.2, 0.3, 2, 1.5).to_dict()["busy"] is True


@pytest.mark.parametrize(
    "machine_busy, own, expected",
    [
        (2.0, 2.0, 0.0),  # the machine was busy only with the timed work
        (2.0, 1.0, 1.0),  # two cores busy for one second, one of them with the timed work
    ],
)
def test_meter_subtracts_its_own_cpu_time(monkeypatch, machine_busy, own, expected) -> None:
    clock = iter([100.0, 101.0])  # one second of wall time
    busy = iter([50.0, 50.0 + machine_busy])
    mine = iter([7.0, 7.0 + own])
    monkeypatch.setattr(machine.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(machine, "busy_cpu_seconds", lambda: next(busy))
    monkeypatch.setattr(machine, "own_cpu_seconds", lambda: next(mine))
    monkeypatch.setattr(machine, "core_count", lambda: 2)
    with LoadMeter() as meter:
        pass
    assert meter.load.other_cores == pytest.approx(expected)


def test_without_proc_stat_only_the_load_average_is_kept(monkeypatch) -> None:
    monkeypatch.setattr(machine, "busy_cpu_seconds", lambda: None)
    with LoadMeter() as meter:
        pass
    assert meter.load.other_cores is None


def test_cpu_counters_read_on_this_machine() -> None:
    assert machine.own_cpu_seconds() > 0
    busy = machine.busy_cpu_seconds()
    assert busy is None or busy > 0
