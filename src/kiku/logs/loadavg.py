"""`LoadAverage`: one dyno's 1, 5 and 15-minute load averages, computed as the kernel does.

The kernel counts the tasks that are runnable or in uninterruptible sleep (states R and D)
every 5 s and folds the count into three exponentially-decayed averages,
`load = load * e^(-5/period) + n * (1 - e^(-5/period))` (kernel/sched/loadavg.c). A dyno
has no load average of its own, so kiku counts the tasks of the dyno's cgroup instead.
The decay uses the time that really passed, so a late tick weighs as much as it should.

    load = LoadAverage(at=clock())
    load.update(runnable(tasks, Path("/proc")), at=clock())    # every 5 s
    load.values                                                 # (1m, 5m, 15m)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

PERIODS = (60.0, 300.0, 900.0)  # seconds
TICK = 5.0  # the kernel's LOAD_FREQ


class LoadAverage:
    def __init__(self, at: float) -> None:
        self.at = at
        self.values = (0.0, 0.0, 0.0)  # a new dyno starts at 0, as a booted kernel does

    def update(self, runnable: int, at: float) -> None:
        elapsed = at - self.at
        if elapsed <= 0:
            return
        decays = [math.exp(-elapsed / period) for period in PERIODS]
        one, five, fifteen = (
            value * decay + runnable * (1 - decay)
            for value, decay in zip(self.values, decays, strict=True)
        )
        self.values = (one, five, fifteen)
        self.at = at


def runnable(tasks: Iterable[int], proc: Path = Path("/proc")) -> int:
    """How many of these threads are runnable or in uninterruptible sleep."""
    count = 0
    for tid in tasks:
        try:
            # `pid (comm) S ...`: the command may hold spaces and parentheses.
            state = (proc / str(tid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # it ended between listing and reading
        if state in ("R", "D"):
            count += 1
    return count
