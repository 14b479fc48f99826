"""Log sessions: `POST /apps/:app/log-sessions` hands out a URL that is its own secret;
fetching it streams the app's lines (history, then live lines with `tail`).

The URL carries a signed token with the app and the filters, so a session outlives a
restart of `kiku server` (the official CLI reconnects to the same URL with `Last-Event-ID`).
A session not fetched for 360 s expires, as logplex's do.

A tail is a `TailSession`, a sink with a bounded buffer: a consumer that stops reading loses
lines (never slowing the app or other consumers) and is told so with an L11 line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from kiku.logs.lines import LogLine, rfc3339

EXPIRY = 360.0  # seconds a session may go unfetched
TAIL_BUFFER = 10000  # lines a tail may fall behind before it drops (L11)
MAX_LINES = 1500
PROGRESS_WINDOW = 1.0  # seconds: a consumer that took nothing for longer is stalled


@dataclass(frozen=True)
class SessionSpec:
    app_id: str
    lines: int = 100
    tail: bool = False
    source: str | None = None
    dyno: str | None = None
    created: float = 0.0
    nonce: str = ""  # two sessions asked for alike at the same moment are still two


class LogSessions:
    """Makes and checks session tokens; remembers when each was last fetched."""

    def __init__(self, key_file: Path, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._key = _load_key(key_file)
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self, spec: SessionSpec) -> str:
        spec = SessionSpec(
            **{**asdict(spec), "created": self.clock(), "nonce": secrets.token_urlsafe(6)}
        )
        payload = _b64(json.dumps(asdict(spec), separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def open(self, token: str) -> SessionSpec | None:
        """The session's spec, or None when the token is forged, malformed or expired."""
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            spec = SessionSpec(**json.loads(base64.urlsafe_b64decode(payload + "==")))
        except (ValueError, TypeError):
            return None
        now = self.clock()
        with self._lock:
            self._expire(now)
            used = self._last_used.get(token, spec.created)
            if now - used > EXPIRY:
                return None
            self._last_used[token] = now
        return spec

    def touch(self, token: str) -> None:
        """A streaming session counts as used for as long as it streams."""
        with self._lock:
            self._last_used[token] = self.clock()

    def _expire(self, now: float) -> None:
        if len(self._last_used) > 1000:
            self._last_used = {t: u for t, u in self._last_used.items() if now - u <= EXPIRY}

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:20])


class TailSession:
    """A sink for one tail: lines wait in a bounded buffer for the consumer's task."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        source: str | None,
        dyno: str | None,
        limit: int = TAIL_BUFFER,
    ) -> None:
        self.loop = loop
        self.source = source
        self.dyno = dyno
        self.limit = limit
        self.pending: deque[LogLine] = deque()
        self.dropped = 0
        self.dropped_since = 0.0
        self._ready = asyncio.Event()
        self._notified = False
        self._lock = threading.Lock()
        self._read_at = time.monotonic()  # when the consumer last took a batch

    def offer(self, line: LogLine) -> None:
        if not line.matches(self.source, self.dyno):
            return
        with self._lock:
            if len(self.pending) >= self.limit:
                if not self.dropped:
                    self.dropped_since = line.at
                self.dropped += 1
                return
            self.pending.append(line)
            if self._notified:
                return
            self._notified = True
        self.loop.call_soon_threadsafe(self._ready.set)

    def offer_many(self, lines: list[LogLine]) -> None:
        wanted = [line for line in lines if line.matches(self.source, self.dyno)]
        if not wanted:
            return
        with self._lock:
            room = self.limit - len(self.pending)
            if len(wanted) > room:
                lost = wanted[max(room, 0) :]
                if not self.dropped:
                    self.dropped_since = lost[0].at
                self.dropped += len(lost)
                wanted = wanted[: max(room, 0)]
            self.pending.extend(wanted)
            if self._notified or not wanted:
                return
            self._notified = True
        self.loop.call_soon_threadsafe(self._ready.set)

    def pressure(self) -> float:
        """How full the buffer is, while the consumer keeps reading (else 0: a stalled
        consumer must not hold anyone up)."""
        if time.monotonic() - self._read_at > PROGRESS_WINDOW:
            return 0.0
        return len(self.pending) / self.limit

    async def next_batch(self, timeout: float) -> tuple[list[LogLine], str | None]:
        """Lines waiting (after waiting up to `timeout` for one), and an L11 notice if some
        were dropped since the last batch."""
        if not self.pending:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return [], None
        with self._lock:
            self._read_at = time.monotonic()
            self._ready.clear()
            self._notified = False
            batch = list(self.pending)
            self.pending.clear()
            dropped, since = self.dropped, self.dropped_since
            self.dropped = 0
        notice = None
        if dropped:
            notice = (
                f"{rfc3339(time.time())} heroku[logplex]: Error L11 (Tail buffer overflow) -> "
                f"This tail session dropped {dropped} messages since {rfc3339(since)}"
            )
        return batch, notice


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
