"""`Metrics`: per app and process type, one-minute buckets of router traffic (requests,
response-time percentiles, status classes, errors by H code) and dyno memory, for 24 hours.

    metrics = Metrics(data_dir / "logs" / "metrics")
    logplex.watch(metrics)              # every router line: metrics.observe(app_id, line)
    metrics.record_memory(app_id, "web", at, rss=..., total=..., quota=...)  # runtime sampler
    metrics.report(app_id, since, until)   # {"web": TypeReport(summary, series)}
    metrics.flush()                     # apps that changed, to disk (MetricsPart, each minute)

Response time is the router's `service=` time, as Heroku's metrics use it. A minute costs a
few counters and a small histogram (`histogram.py`), so 24 h of 1440 minutes per process
type stay small. Each app's minutes are kept in `<directory>/<app_id>.json`, rewritten
atomically when they changed, so a restart of `kiku server` keeps them (it loses at most the
last minute's changes if killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiku.logs import histogram
from kiku.logs.lines import LogLine
from kiku.logs.routerline import RouterRequest, parse

log = logging.getLogger("kiku.logs")

RESOLUTION = 60  # seconds per bucket
RETENTION = 24 * 60  # buckets (24 h)
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
PERCENTILES = (50, 95, 99)
FORMAT = 1  # of the files


class Minute:
    """One process type's minute: requests and, from the runtime sampler, memory."""

    __slots__ = (
        "errors",
        "latency",
        "quota",
        "requests",
        "rss_max",
        "rss_sum",
        "samples",
        "statuses",
        "total_max",
        "total_sum",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.statuses = [0, 0, 0, 0]  # 2xx 3xx 4xx 5xx
        self.latency: dict[int, int] = {}  # histogram of service ms
        self.errors: dict[str, int] = {}  # H code -> count
        self.samples = 0  # memory samples (one per dyno every 20 s)
        self.rss_sum = self.rss_max = self.total_sum = self.total_max = self.quota = 0

    def add_request(self, request: RouterRequest) -> None:
        self.requests += 1
        if request.status is not None and 200 <= request.status < 600:
            self.statuses[request.status // 100 - 2] += 1
        if request.service_ms is not None:
            histogram.add(self.latency, request.service_ms)
        if request.code:
            self.errors[request.code] = self.errors.get(request.code, 0) + 1

    def add_memory(self, rss: int, total: int, quota: int) -> None:
        self.samples += 1
        self.rss_sum += rss
        self.total_sum += total
        self.rss_max = max(self.rss_max, rss)
        self.total_max = max(self.total_max, total)
        self.quota = quota

    def copy(self) -> Minute:
        twin = Minute()
        for name in Minute.__slots__:
            value = getattr(self, name)
            setattr(twin, name, value.copy() if isinstance(value, dict | list) else value)
        return twin

    def row(self, minute: int) -> list[Any]:
        memory = [self.samples, self.rss_sum, self.rss_max, self.total_sum, self.total_max]
        return [
            minute,
            self.requests,
            self.statuses,
            sorted(self.latency.items()),
            self.errors,
            [*memory, self.quota],
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> tuple[int, Minute]:
        minute, requests, statuses, latency, errors, memory = row
        found = cls()
        found.requests, found.statuses = int(requests), [int(n) for n in statuses]
        found.latency = {int(index): int(count) for index, count in latency}
        found.errors = {str(code): int(count) for code, count in errors.items()}
        (
            found.samples,
            found.rss_sum,
            found.rss_max,
            found.total_sum,
            found.total_max,
            found.quota,
        ) = (int(n) for n in memory)
        return int(minute), found


@dataclass(frozen=True)
class Memory:
    """Bytes: the mean and the highest of the dynos' samples, and the size's quota."""

    rss: int
    rss_max: int
    total: int
    total_max: int
    quota: int


@dataclass(frozen=True)
class Stats:
    """Some minutes of one process type, `at` the unix time the first one starts."""

    at: int
    minutes: int
    requests: int
    response_ms: dict[str, int | None]  # {"p50": 12, "p95": 40, "p99": 90}
    statuses: dict[str, int]  # {"2xx": 10, "3xx": 0, "4xx": 1, "5xx": 0}
    errors: dict[str, int]  # {"H12": 1}
    memory: Memory | None

    @property
    def throughput_rpm(self) -> float:
        return self.requests / self.minutes if self.minutes else 0.0


@dataclass(frozen=True)
class TypeReport:
    summary: Stats  # the whole window
    series: list[Stats]  # one per minute that saw traffic or memory samples, oldest first


def stats(minutes: list[Minute], at: int, count: int) -> Stats:
    latency = histogram.merge(m.latency for m in minutes)
    errors: dict[str, int] = {}
    for m in minutes:
        for code, n in m.errors.items():
            errors[code] = errors.get(code, 0) + n
    samples = sum(m.samples for m in minutes)
    memory = None
    if samples:
        memory = Memory(
            rss=sum(m.rss_sum for m in minutes) // samples,
            rss_max=max(m.rss_max for m in minutes),
            total=sum(m.total_sum for m in minutes) // samples,
            total_max=max(m.total_max for m in minutes),
            quota=max(m.quota for m in minutes),
        )
    return Stats(
        at=at,
        minutes=count,
        requests=sum(m.requests for m in minutes),
        response_ms={f"p{p}": histogram.percentile(latency, p) for p in PERCENTILES},
        statuses={
            name: sum(m.statuses[i] for m in minutes) for i, name in enumerate(STATUS_CLASSES)
        },
        errors=dict(sorted(errors.items())),
        memory=memory,
    )


class Metrics:
    """Thread-safe: router lines come from the logplex (with its lock held), memory from the
    runtime sampler's thread, reports from the API's."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock
        # app id -> process type -> minute (unix time // 60) -> Minute, oldest first
        self._apps: dict[str, dict[str, dict[int, Minute]]] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._load()

    # -- input ---------------------------------------------------------------------------

    def observe(self, app_id: str, line: LogLine) -> None:
        """A logplex watcher: takes router lines, ignores the rest. Never blocks on I/O."""
        if line.process != "router" or line.source != "heroku":
            return
        request = parse(line.message)
        if request is None:
            return
        with self._lock:
            minute = self._minute(app_id, request.process_type, line.at)
            if minute is not None:
                minute.add_request(request)

    def record_memory(
        self, app_id: str, process_type: str, at: float, *, rss: int, total: int, quota: int
    ) -> None:
        """One dyno's memory sample (bytes)."""
        with self._lock:
            minute = self._minute(app_id, process_type, at)
            if minute is not None:
                minute.add_memory(rss, total, quota)

    def _minute(self, app_id: str, process_type: str, at: float) -> Minute | None:
        index = int(at // RESOLUTION)
        if index <= self._now_minute() - RETENTION:
            return None
        minutes = self._apps.setdefault(app_id, {}).setdefault(process_type, {})
        found = minutes.get(index)
        if found is None:
            found = minutes[index] = Minute()
        self._dirty.add(app_id)
        return found

    def _now_minute(self) -> int:
        return int(self.clock() // RESOLUTION)

    # -- output --------------------------------------------------------------------------

    def report(
        self, app_id: str, since: float, until: float, process_type: str | None = None
    ) -> dict[str, TypeReport]:
        """The minutes of `window(since, until)`, per process type that has any; only
        `process_type` if given."""
        first, count = self.window(since, until)
        last = first + count - 1
        with self._lock:
            chosen = {
                kind: [(m, minute.copy()) for m, minute in minutes.items() if first <= m <= last]
                for kind, minutes in self._apps.get(app_id, {}).items()
                if process_type is None or kind == process_type
            }
        reports = {}
        for kind, found in sorted(chosen.items()):
            if not found:
                continue
            found.sort(key=lambda pair: pair[0])
            series = [stats([minute], m * RESOLUTION, 1) for m, minute in found]
            summary = stats([minute for _, minute in found], first * RESOLUTION, count)
            reports[kind] = TypeReport(summary, series)
        return reports

    def window(self, since: float, until: float) -> tuple[int, int]:
        """The first minute (unix time // 60) and how many, from the one holding `since` to
        the one holding `until`, reaching back at most 24 h."""
        first = max(int(since // RESOLUTION), self._now_minute() - RETENTION + 1)
        return first, max(int(until // RESOLUTION) - first + 1, 0)

    def empty(self, since: float, until: float) -> Stats:
        """A summary with nothing in it (a process type without traffic yet)."""
        first, count = self.window(since, until)
        return stats([], first * RESOLUTION, count)

    # -- keeping -------------------------------------------------------------------------

    def forget(self, app_id: str) -> None:
        with self._lock:
            self._apps.pop(app_id, None)
            self._dirty.add(app_id)

    def flush(self) -> None:
        """Drop minutes older than 24 h; rewrite the files of apps that changed."""
        with self._flushing:
            with self._lock:
                self._expire()
                pending = {
                    app_id: {
                        kind: [minute.row(m) for m, minute in minutes.items()]
                        for kind, minutes in self._apps.get(app_id, {}).items()
                    }
                    for app_id in self._dirty
                }
                self._dirty = set()
            for app_id, types in pending.items():
                self._write(app_id, types)

    def _expire(self) -> None:
        """Minutes are added roughly in time order: the expired ones are at the front."""
        cutoff = self._now_minute() - RETENTION
        for app_id, types in list(self._apps.items()):
            for kind, minutes in list(types.items()):
                for m in list(minutes):
                    if m > cutoff:
                        break
                    del minutes[m]
                    self._dirty.add(app_id)
                if not minutes:
                    del types[kind]
            if not types:
                del self._apps[app_id]

    def _write(self, app_id: str, types: dict[str, list[list[Any]]]) -> None:
        path = self.directory / f"{app_id}.json"
        if not any(types.values()):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        partial = path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"format": FORMAT, "types": types}, f, separators=(",", ":"))
        os.replace(partial, path)

    def _load(self) -> None:
        cutoff = self._now_minute() - RETENTION
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                types = {
                    kind: dict(Minute.from_row(row) for row in rows)
                    for kind, rows in data["types"].items()
                }
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("metrics file %s unreadable (%s); starting it afresh", path, exc)
                continue
            kept = {
                kind: {m: minute for m, minute in sorted(minutes.items()) if m > cutoff}
                for kind, minutes in types.items()
            }
            self._apps[path.stem] = {kind: minutes for kind, minutes in kept.items() if minutes}


FLUSH_EVERY = 60.0  # seconds


class MetricsPart:
    """Writes the metrics to disk each minute, and once more when kiku stops."""

    name = "metrics"

    def __init__(self, metrics: Metrics, interval: float = FLUSH_EVERY) -> None:
        self.metrics = metrics
        self.interval = interval
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.interval)
            try:
                await asyncio.to_thread(self.metrics.flush)
            except OSError:  # a full disk must not stop the platform; the next minute retries
                log.exception("writing metrics failed")

    def stop(self) -> None:
        self._stopped.set()
