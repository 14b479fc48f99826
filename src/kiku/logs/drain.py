"""`Drain`: one log drain at work: a buffer logplex offers lines to, and a thread that
hands them to a `Sender` (syslog or HTTPS), in order, reconnecting with backoff.

    drain = open_drain("syslog+tls://logs.example.com:6514", "d.0f3c…", announce=say)
    logplex.attach(app_id, drain)          # drain.offer(line) for each new line
    ...
    logplex.detach(app_id, drain)
    drain.close(grace=2.0)                 # deliver what is buffered, for at most 2 s

When the buffer (1024 lines) overflows, the oldest lines go and the drain says so: an
`Error L10 (output buffer overflow): N messages dropped since TS.` line goes to the drain
itself, ahead of the lines after the gap, and to `announce` (the app's stream, for
`kiku logs` and the app's other drains). Lines the drain's own thread publishes (its L10
and L14 notices) are not offered back to it, so a drain that overflows cannot feed itself.
"""

from __future__ import annotations

import logging
import math
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kiku.logs.drain_buffer import CAPACITY, DrainBuffer
from kiku.logs.drain_urls import parse_drain_url
from kiku.logs.http_drain import HttpSender
from kiku.logs.lines import LogLine
from kiku.logs.sender import DeliveryFailed, Sender
from kiku.logs.syslog_drain import SyslogSender

log = logging.getLogger("kiku.logs.drains")

NOTICE_INTERVAL = 1.0  # seconds between two L10 notices of one drain
IDLE_WAIT = 1.0  # how long the thread sleeps on an empty buffer before looking again
PROGRESS_WINDOW = 1.0  # seconds: a drain that delivered nothing for longer is stuck
ABORT_WAIT = 6.0  # after the grace: time for an aborted request to give up (its timeout)


@dataclass
class Backoff:
    """Delays between tries to reach a receiver that is away: doubling, up to `maximum`."""

    initial: float = 0.5
    maximum: float = 30.0
    _next: float = 0.0

    def next(self) -> float:
        delay = self._next or self.initial
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = 0.0


def _nowhere(text: str) -> None:
    pass


class Drain:
    def __init__(
        self,
        sender: Sender,
        *,
        name: str,
        announce: Callable[[str], None] = _nowhere,
        capacity: int = CAPACITY,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sender = sender
        self.name = name  # the drain token: safe to log, unlike the URL
        self.buffer = DrainBuffer(capacity)
        self.delivered = 0  # lines (and notices) handed to the receiver
        self._announce = announce
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._next_notice = 0.0
        self._failing = False  # the last delivery failed: the receiver is away
        self._deadline = math.inf  # monotonic; set when closing
        self._aborted = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"drain {name}", daemon=True)
        self._thread_id: int | None = None
        self._progress_at = time.monotonic()  # when the receiver last took a batch

    def start(self) -> Drain:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Lines lost so far: overflowed from the buffer or given up on by the sender."""
        return self.buffer.total_dropped + self.sender.dropped

    def offer(self, line: LogLine) -> None:
        """Logplex's sink call (its lock held): buffer the line, never wait."""
        if threading.get_ident() != self._thread_id:
            self.buffer.offer(line)

    def pressure(self) -> float:
        """How full the buffer is, while the receiver takes lines (else 0: a drain that
        is stuck must not hold up the app's other consumers)."""
        if time.monotonic() - self._progress_at > PROGRESS_WINDOW:
            return 0.0
        return len(self.buffer) / self.buffer.capacity

    def offer_many(self, lines: list[LogLine]) -> None:
        if threading.get_ident() != self._thread_id:
            self.buffer.offer_many(lines)

    # -- closing ---------------------------------------------------------------------------

    def begin_close(self, grace: float) -> None:
        """Deliver what is buffered for at most `grace` seconds more, then stop."""
        self._deadline = min(self._deadline, time.monotonic() + grace)
        self.buffer.close()

    def join(self, timeout: float) -> None:
        """Wait for the thread; past `timeout`, cut off whatever it is waiting on."""
        self._thread.join(max(timeout, 0.0))
        if self._thread.is_alive():
            self._aborted.set()
            self.sender.abort()
            self._thread.join(ABORT_WAIT)
            if self._thread.is_alive():
                log.warning("drain %s: its thread did not stop", self.name)

    def close(self, grace: float = 2.0) -> None:
        self.begin_close(grace)
        self.join(grace)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        self._thread_id = threading.get_ident()
        pending: list[LogLine] = []
        try:
            while not self._aborted.is_set():
                if not pending:
                    pending = self._next_batch()
                    if not pending:
                        if self.buffer.closed:
                            return
                        continue
                if time.monotonic() >= self._deadline:
                    return  # closing, and out of time: what is left is lost
                try:
                    self.sender.deliver(pending)
                except DeliveryFailed as exc:
                    self._wait(self._backoff.next(), str(exc))
                    continue
                if self._failing:
                    log.info("drain %s: delivering again", self.name)
                    self._failing = False
                self.delivered += len(pending)
                self._progress_at = time.monotonic()
                pending = []
                self._backoff.reset()
        except Exception:  # a bug: say so, rather than let the drain die silently
            log.exception("drain %s: stopped by an unexpected error", self.name)
        finally:
            self.sender.close()

    def _next_batch(self) -> list[LogLine]:
        wait = NOTICE_INTERVAL / 2 if self.buffer.dropped else IDLE_WAIT
        lines = self.buffer.take(self.sender.max_lines, self.sender.target_bytes, wait)
        notice = self._overflow_notice()
        return [notice, *lines] if notice else lines

    def _overflow_notice(self) -> LogLine | None:
        if not self.buffer.dropped or self._clock() < self._next_notice:
            return None
        count, since = self.buffer.take_dropped()
        now = self._clock()
        self._next_notice = now + NOTICE_INTERVAL
        when = datetime.fromtimestamp(int(since), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        text = f"Error L10 (output buffer overflow): {count} messages dropped since {when}."
        self._announce(text)
        return LogLine(0, now, "heroku", "logplex", text)

    def _wait(self, delay: float, why: str) -> None:
        # Once per outage at WARNING: a receiver away for a day must not flood kiku's log.
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "drain %s: %s; trying again in %.1f s", self.name, why, delay)
        self._failing = True
        self._aborted.wait(min(delay, max(self._deadline - time.monotonic(), 0.0)))


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """The system's CAs, plus the operator's own (KIKU_DRAIN_CA_FILE) when given."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def open_drain(
    url: str,
    token: str,
    *,
    announce: Callable[[str], None] = _nowhere,
    tls: ssl.SSLContext | None = None,
    capacity: int = CAPACITY,
    backoff: Backoff | None = None,
    retry_delay: float = 1.0,
    clock: Callable[[], float] = time.time,
    private_ok: bool = False,
) -> Drain:
    """A started drain for `url` (syslog://, syslog+tls://, https://, http://): attach it to
    a logplex, or `offer()` it lines directly (bench/logs.py); `close()` it when done.

    Raises `kiku.errors.InvalidParams` for a URL kiku does not drain to."""
    target = parse_drain_url(url)
    sender: Sender
    if target.is_syslog:
        context = (tls or tls_context()) if target.uses_tls else None
        sender = SyslogSender(target, token, tls=context, announce=announce, private_ok=private_ok)
    else:
        sender = HttpSender(
            target,
            token,
            tls=tls,
            retry_delay=retry_delay,
            private_ok=private_ok,
            announce=announce,
        )
    drain = Drain(
        sender, name=token, announce=announce, capacity=capacity, backoff=backoff, clock=clock
    )
    return drain.start()
