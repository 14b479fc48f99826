"""`Drains`: every app's log drains at work, as the store lists them.

    drains = Drains(logplex, store, ca_file=settings.drain_ca_file)
    drains.start()                      # one `Drain` per stored drain, attached to logplex
    drains.add(DrainSpec.of(row))       # the API added one (same process)
    drains.remove(row.id)               # the API removed one
    drains.reconcile()                  # level-triggered: match the store (apps destroyed)
    drains.stop()                       # deliver what is buffered, for a short grace

Before `start()` (unit tests of the API, admin commands) adding and removing do nothing:
the store is the truth, and `start()` reads it. `DrainsPart` runs this in `kiku server`.
`open_drain` (kiku.logs.drain) makes one drain for a URL, for benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from kiku.errors import InvalidParams
from kiku.logs.drain import Backoff, Drain, open_drain, tls_context
from kiku.logs.drain_urls import redact
from kiku.logs.logplex import Logplex
from kiku.store import Store
from kiku.store.models import LogDrain

__all__ = ["MAX_PER_APP", "DrainSpec", "Drains", "DrainsPart", "new_token", "open_drain"]

log = logging.getLogger("kiku.logs.drains")

MAX_PER_APP = 5  # Heroku's limit (HEROKU_BEHAVIOUR §4.4)
GRACE = 2.0  # seconds to deliver what is buffered when kiku server stops
RECONCILE_EVERY = 30.0
# The API adds or removes a drain just before its transaction commits: a reconcile that read
# the store meanwhile must not undo that, so what the API did this recently stands.
SETTLE = 10.0


@dataclass(frozen=True)
class DrainSpec:
    """What the store says about one drain."""

    id: str
    app_id: str
    url: str
    token: str

    @classmethod
    def of(cls, row: LogDrain) -> DrainSpec:
        return cls(row.id, row.app_id, row.url, row.token)


def new_token() -> str:
    """`d.<uuid>`: the syslog HOSTNAME and Logplex-Drain-Token receivers know a drain by."""
    return f"d.{uuid.uuid4()}"


class Drains:
    def __init__(
        self,
        logplex: Logplex,
        store: Store,
        *,
        ca_file: Path | None = None,
        grace: float = GRACE,
        backoff: Callable[[], Backoff] = Backoff,
        retry_delay: float = 1.0,
        private_ok: bool = False,
    ) -> None:
        self.logplex = logplex
        self.private_ok = private_ok
        self.store = store
        self.ca_file = ca_file
        self.grace = grace
        self._backoff = backoff
        self._retry_delay = retry_delay
        self._running: dict[str, tuple[DrainSpec, Drain]] = {}
        self._retired: list[Drain] = []  # removed, their threads still finishing
        # drain id -> (when, added?): what add/remove did lately, which a reconcile that read
        # the store before their commit must not undo.
        self._touched: dict[str, tuple[float, bool]] = {}
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        with self._lock:
            self._started = True
        self.reconcile()

    def drain(self, drain_id: str) -> Drain | None:
        """The running drain of that id (tests, stats)."""
        with self._lock:
            running = self._running.get(drain_id)
        return running[1] if running else None

    def add(self, spec: DrainSpec) -> None:
        with self._lock:
            self._touched[spec.id] = (time.monotonic(), True)
            if self._started and spec.id not in self._running:
                self._open(spec)

    def remove(self, drain_id: str) -> None:
        with self._lock:
            self._touched[drain_id] = (time.monotonic(), False)
            self._retire(drain_id)

    def reconcile(self) -> None:
        """Open the drains the store lists and are not running; close those it does not."""
        read_at = time.monotonic()
        with self.store.session() as db:
            rows = db.scalars(select(LogDrain)).all()
            wanted = {row.id: DrainSpec.of(row) for row in rows}
        with self._lock:
            if not self._started:
                return
            recent = {k: v for k, v in self._touched.items() if v[0] > read_at - SETTLE}
            self._touched = recent
            for drain_id, (spec, _) in list(self._running.items()):
                just_added = recent.get(drain_id, (0, False))[1]
                if wanted.get(drain_id) != spec and not just_added:
                    self._retire(drain_id)
            for drain_id, spec in wanted.items():
                just_removed = drain_id in recent and not recent[drain_id][1]
                if drain_id not in self._running and not just_removed:
                    self._open(spec)
            self._retired = [drain for drain in self._retired if drain.alive]

    def stop(self) -> None:
        """Stop every drain, each delivering what it holds for at most the grace."""
        with self._lock:
            self._started = False
            for drain_id in list(self._running):
                self._retire(drain_id, grace=self.grace)
            closing, self._retired = self._retired, []
        deadline = time.monotonic() + self.grace
        for drain in closing:
            drain.join(deadline - time.monotonic())

    # -- with the lock held ----------------------------------------------------------------

    def _open(self, spec: DrainSpec) -> None:
        def announce(text: str) -> None:
            self.logplex.publish(spec.app_id, "heroku", "logplex", text)

        try:
            drain = open_drain(
                spec.url,
                spec.token,
                announce=announce,
                tls=self._context(),
                backoff=self._backoff(),
                retry_delay=self._retry_delay,
                private_ok=self.private_ok,
            )
        except InvalidParams:
            log.warning("drain %s: cannot drain to %s; skipped", spec.token, redact(spec.url))
            return
        self._running[spec.id] = (spec, drain)
        self.logplex.attach(spec.app_id, drain)

    def _retire(self, drain_id: str, grace: float = 0.0) -> None:
        running = self._running.pop(drain_id, None)
        if running is None:
            return
        spec, drain = running
        self.logplex.detach(spec.app_id, drain)
        drain.begin_close(grace)
        self._retired.append(drain)

    def _context(self) -> ssl.SSLContext:
        # One context for all drains: loading the system's CAs takes a while.
        if self._tls is None:
            try:
                self._tls = tls_context(self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                log.error(
                    "drains: cannot use the CA file %s (%s); trusting the system's CAs only",
                    self.ca_file,
                    exc,
                )
                self._tls = tls_context()
        return self._tls


class DrainsPart:
    """`kiku server`'s part for drains: start them, keep them matching the store, stop them."""

    name = "drains"

    def __init__(self, drains: Drains, *, every: float = RECONCILE_EVERY) -> None:
        self.drains = drains
        self.every = every
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await asyncio.to_thread(self.drains.start)
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.every)
                if self._stopping.is_set():
                    break
                try:
                    await asyncio.to_thread(self.drains.reconcile)
                except SQLAlchemyError:
                    log.exception("drains: reading the store failed; trying again later")
        finally:
            await asyncio.to_thread(self.drains.stop)

    def stop(self) -> None:
        self._stopping.set()
