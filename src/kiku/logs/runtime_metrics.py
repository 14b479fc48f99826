"""`RuntimeSampler`: Labs `log-runtime-metrics` (HEROKU_BEHAVIOUR §4.5) and the memory half
of `Metrics`, read from each running dyno's cgroups.

Every 5 s (`tick()`) it counts each dyno's runnable tasks into its load averages
(`loadavg.py`); every 20 s (`sample_once()`) it reads each dyno's `memory.stat` and

- for apps with `log-runtime-metrics` enabled, publishes two lines, source `heroku`,
  process the dyno's name:

      source=web.1 dyno=heroku.3051208923.0b7c…-… sample#load_avg_1m=0.02 sample#load_avg_5m=…
      source=web.1 dyno=heroku.3051208923.0b7c…-… sample#memory_total=21.00MB sample#memory_rss=…

- records the memory in `Metrics` for every formation dyno that is not on a free size.

Unlike Heroku's, the feature takes effect at the next sample, with no restart. Heroku's
`dyno=` names the app's numeric id and a uuid per dyno run; kiku's app ids are uuids, so the
number is the app id's first 32 bits (stable for the app), and the uuid is the dyno's id
(new on every restart, as Heroku's). Memory follows Heroku's definitions: rss, cache and
swap from the cgroup's hierarchical `memory.stat`, total their sum, pgpgin/pgpgout the
cgroup's page counters, quota the dyno size's memory (where R14 starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from kiku.apps.features import LOG_RUNTIME_METRICS
from kiku.dynos.sizes import SIZES
from kiku.dynos.states import DynoState
from kiku.logs.loadavg import TICK, LoadAverage, runnable
from kiku.logs.logplex import Logplex
from kiku.logs.metrics import Metrics
from kiku.store import Store
from kiku.store.models import App, Dyno

if TYPE_CHECKING:
    from kiku.dynos.backends.local import LocalBackend
    from kiku.platform import Platform

log = logging.getLogger("kiku.logs")

SAMPLE_EVERY = 20.0  # seconds, as Heroku
RUNNING = (DynoState.STARTING.value, DynoState.UP.value)
NO_METRICS_SIZES = ("free",)
# Where a dyno's threads are listed, best first (any controller's group lists them all).
TASK_CONTROLLERS = ("cpu", "pids", "memory")


@dataclass(frozen=True)
class RunningDyno:
    app_id: str
    dyno_id: str  # a uuid per run of the dyno
    name: str  # web.1, run.4821
    type: str
    size: str  # as the formation has it: "standard-1x"
    one_off: bool = False
    log_metrics: bool = False  # the app has log-runtime-metrics enabled


@dataclass(frozen=True)
class MemoryStat:
    """A dyno's memory, from its cgroup's memory.stat: bytes, except the page counters."""

    rss: int
    cache: int
    swap: int
    pgpgin: int
    pgpgout: int

    @property
    def total(self) -> int:
        return self.rss + self.cache + self.swap

    @classmethod
    def parse(cls, text: str) -> MemoryStat:
        values = {}
        for row in text.splitlines():
            key, _, value = row.partition(" ")
            if value.isdigit():
                values[key] = int(value)

        def get(name: str) -> int:
            # total_*: the group and any groups below it, as the kernel charges them
            return values.get(f"total_{name}", values.get(name, 0))

        return cls(get("rss"), get("cache"), get("swap"), get("pgpgin"), get("pgpgout"))


def app_number(app_id: str) -> int:
    """Heroku's `dyno=heroku.<number>.…` names the app by number; kiku's ids are uuids."""
    return int(app_id.replace("-", "")[:8], 16)


def runtime_lines(
    dyno: RunningDyno, load: tuple[float, float, float], memory: MemoryStat, quota: int
) -> list[str]:
    """The two lines of one sample, as Heroku writes them."""
    who = f"source={dyno.name} dyno=heroku.{app_number(dyno.app_id)}.{dyno.dyno_id}"
    one, five, fifteen = load
    return [
        f"{who} sample#load_avg_1m={one:.2f} sample#load_avg_5m={five:.2f} "
        f"sample#load_avg_15m={fifteen:.2f}",
        f"{who} sample#memory_total={_mb(memory.total)} sample#memory_rss={_mb(memory.rss)} "
        f"sample#memory_cache={_mb(memory.cache)} sample#memory_swap={_mb(memory.swap)} "
        f"sample#memory_pgpgin={memory.pgpgin}pages sample#memory_pgpgout={memory.pgpgout}pages "
        f"sample#memory_quota={_mb(quota)}",
    ]


def _mb(size: int) -> str:
    return f"{size / 2**20:.2f}MB"


def running_dynos(store: Store) -> list[RunningDyno]:
    """Every dyno the dyno manager has starting or up, from its `dynos` table."""
    query = (
        select(Dyno, App.features)
        .join(App, App.id == Dyno.app_id)
        .where(Dyno.state.in_(RUNNING))
        .order_by(Dyno.app_id, Dyno.name)
    )
    with store.session() as db:
        return [
            RunningDyno(
                app_id=row.app_id,
                dyno_id=row.id,
                name=row.name,
                type=row.type,
                size=row.size,
                one_off=row.one_off,
                log_metrics=LOG_RUNTIME_METRICS in (features or []),
            )
            for row, features in db.execute(query)
        ]


Cgroups = Callable[[str], Mapping[str, Path]]  # dyno id -> {controller: its group directory}


class RuntimeSampler:
    """Example::

    sampler = RuntimeSampler(lambda: running_dynos(store), cgroups, logplex, metrics)
    sampler.tick()          # every 5 s
    sampler.sample_once()   # every 20 s
    """

    def __init__(
        self,
        dynos: Callable[[], Iterable[RunningDyno]],
        cgroups: Cgroups,
        logplex: Logplex,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        proc: Path = Path("/proc"),
    ) -> None:
        self.dynos = dynos
        self.cgroups = cgroups
        self.logplex = logplex
        self.metrics = metrics
        self.clock = clock
        self.proc = proc
        self._loads: dict[str, LoadAverage] = {}

    def tick(self) -> None:
        """Count each running dyno's runnable tasks into its load averages."""
        now = self.clock()
        running = set()
        for dyno in self.dynos():
            running.add(dyno.dyno_id)
            load = self._loads.get(dyno.dyno_id)
            if load is None:
                load = self._loads[dyno.dyno_id] = LoadAverage(now)
            tasks = self._tasks(dyno.dyno_id)
            if tasks is not None:
                load.update(runnable(tasks, self.proc), now)
        for gone in self._loads.keys() - running:
            del self._loads[gone]

    def sample_once(self) -> int:
        """One sample of every running dyno; answers how many were sampled."""
        now = self.clock()
        sampled = 0
        for dyno in self.dynos():
            memory = self._memory(dyno.dyno_id)
            if memory is None:
                continue  # its cgroup is gone: it stopped a moment ago
            sampled += 1
            size = SIZES.get(dyno.size.lower())
            quota = size.memory_mb * 2**20 if size else 0
            if not dyno.one_off and dyno.size.lower() not in NO_METRICS_SIZES:
                self.metrics.record_memory(
                    dyno.app_id, dyno.type, now, rss=memory.rss, total=memory.total, quota=quota
                )
            if dyno.log_metrics:
                load = self._loads.get(dyno.dyno_id)
                values = load.values if load is not None else (0.0, 0.0, 0.0)
                lines = runtime_lines(dyno, values, memory, quota)
                self.logplex.publish_many(dyno.app_id, "heroku", dyno.name, lines, at=now)
        return sampled

    def _tasks(self, dyno_id: str) -> list[int] | None:
        groups = self.cgroups(dyno_id)
        for controller in TASK_CONTROLLERS:
            if controller in groups:
                with contextlib.suppress(OSError, ValueError):
                    return [int(t) for t in (groups[controller] / "tasks").read_text().split()]
        return None

    def _memory(self, dyno_id: str) -> MemoryStat | None:
        group = self.cgroups(dyno_id).get("memory")
        if group is None:
            return None
        try:
            return MemoryStat.parse((group / "memory.stat").read_text())
        except OSError:
            return None


class RuntimeMetricsPart:
    """Runs the sampler inside `kiku server`: load every 5 s, a sample every 20 s."""

    name = "runtime-metrics"

    def __init__(self, sampler: RuntimeSampler, interval: float = SAMPLE_EVERY) -> None:
        self.sampler = sampler
        self.interval = interval
        self.tick = min(TICK, interval)
        self._stopped = asyncio.Event()

    @classmethod
    def on(cls, platform: Platform, backend: LocalBackend) -> RuntimeMetricsPart:
        """The part for `kiku server`: the dyno manager's dynos, the local backend's cgroups."""
        sampler = RuntimeSampler(
            lambda: running_dynos(platform.store),
            lambda dyno_id: backend.cgroup(dyno_id).paths,
            platform.logplex,
            platform.metrics,
            clock=platform.clock,
        )
        return cls(sampler, platform.settings.runtime_metrics_interval)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sample = loop.time() + self.interval
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.tick)
            if self._stopped.is_set():
                break
            try:
                await asyncio.to_thread(self.sampler.tick)
                if loop.time() >= next_sample:
                    while next_sample <= loop.time():
                        next_sample += self.interval
                    await asyncio.to_thread(self.sampler.sample_once)
            except Exception:  # one bad pass (a busy database) must not stop the platform
                log.exception("runtime metrics pass failed")

    def stop(self) -> None:
        self._stopped.set()
