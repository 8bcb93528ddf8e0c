"""How busy the machine was while something was timed.

A timing taken while other work loads the cores can be wrong many times over
(a comparison chart drawn under load once showed 30-46x the real latency), so
every timing table and figure records the load average at the start and the
end of its measurement, and says "measured under load" when either exceeded
half a busy core per core.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

# Above this 1-minute load per core a timing is labelled as measured under load.
BUSY_LOAD_PER_CORE = 0.5


@dataclass(frozen=True)
class MachineLoad:
    """The 1-minute load average before and after a measurement, and the core count."""

    start: float
    end: float
    cores: int

    @property
    def busy(self) -> bool:
        return max(self.start, self.end) > BUSY_LOAD_PER_CORE * self.cores

    def describe(self) -> str:
        """``"idle (load 0.12 -> 0.30 on 2 cores)"`` or ``"measured under load (...)"``."""
        state = "measured under load" if self.busy else "idle"
        return f"{state} (load {self.start:.2f} -> {self.end:.2f} on {self.cores} cores)"

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


class LoadMeter:
    """Records the load around a block: ``with LoadMeter() as meter: ...; meter.load``."""

    def __enter__(self) -> LoadMeter:
        self._start = load_average()
        return self

    def __exit__(self, *exc: object) -> None:
        self.load = MachineLoad(self._start, load_average(), core_count())
