"""How busy the machine was while something was timed.

A timing taken while other work loads the cores can be wrong many times over
(a comparison chart drawn under load once showed 30-46x the real latency), so
every timing table and figure records how busy the machine was around its
measurement, and says "measured under load" when other work took more than
half a core per core.

The 1-minute load average is recorded too, but it cannot tell the timed
work from others': a benchmark that keeps both cores of a 2-core machine busy
drives it to 2 by itself. :class:`LoadMeter` therefore also reads the
machine's busy CPU time (``/proc/stat``) and subtracts this process's own,
which leaves the cores that *other* processes used while it measured.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

# Above this share of each core taken by other work, a timing is labelled as under load.
BUSY_LOAD_PER_CORE = 0.5


@dataclass(frozen=True)
class MachineLoad:
    """Load around a measurement: the 1-minute load average before and after, the core
    count, and (where the system reports it) the cores other processes kept busy."""

    start: float
    end: float
    cores: int
    other_cores: float | None = None  # mean cores used by other processes; None: unknown

    @property
    def busy(self) -> bool:
        if self.other_cores is not None:
            return self.other_cores > BUSY_LOAD_PER_CORE * self.cores
        return max(self.start, self.end) > BUSY_LOAD_PER_CORE * self.cores

    def describe(self) -> str:
        """``"idle (load 0.12 -> 0.30 on 2 cores)"`` or ``"measured under load (...)"``."""
        state = "measured under load" if self.busy else "idle"
        others = (
            f"; other processes used {self.other_cores:.2f} cores"
            if self.other_cores is not None
            else ""
        )
        return f"{state} (load {self.start:.2f} -> {self.end:.2f} on {self.cores} cores{others})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "busy": self.busy}


def load_average() -> float:
    """The 1-minute load average (0.0 where the system does not report one)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def core_count() -> int:
    return os.cpu_count() or 1


def busy_cpu_seconds() -> float | None:
    """CPU seconds every core of the machine has spent busy since boot (None: unknown)."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields[:8]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of its children, running or done.

    Children still running (DataLoader workers) are read from ``/proc``, so a
    loader's own workers do not count as other work.
    """
    times = os.times()
    return (
        times.user
        + times.system
        + times.children_user
        + times.children_system
        + (_running_children_seconds())
    )


def _running_children_seconds() -> float:
    parent, total = os.getpid(), 0.0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                # After the command name in parentheses: state, ppid, ..., utime (14), stime (15).
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class LoadMeter:
    """Records the load around a block: ``with LoadMeter() as meter: ...; meter.load``."""

    def __enter__(self) -> LoadMeter:
        self._start = load_average()
        self._busy, self._own, self._wall = busy_cpu_seconds(), own_cpu_seconds(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, wall = busy_cpu_seconds(), time.monotonic() - self._wall
        others = None
        if busy is not None and self._busy is not None and wall > 0:
            used = (busy - self._busy) - (own_cpu_seconds() - self._own)
            others = max(0.0, used / wall)
        self.load = MachineLoad(self._start, load_average(), core_count(), others)
