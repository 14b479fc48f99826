"""`DatagramLog`: router log lines to logplex, as datagrams on a unix socket.

Each router worker sends its lines to `<data_dir>/run/logplex.sock` (AF_UNIX, SOCK_DGRAM).
A datagram holds one or more lines, each `<app_id> <unix time, 6 decimals> <router line>\\n`,
for example `0b7c…-… 1764374399.123456 at=info method=GET path="/" host=… status=200 …`;
app id `-` for requests that matched no app.

Lines wait up to 5 ms (or ~60 KB) and go out as one datagram: at tens of thousands of
requests a second that is a few hundred datagrams, where hosts queue as few as 10 per
socket (net.unix.max_dgram_qlen) for logplex to read.
Sending never blocks and never raises into the request path: while logplex is away
(socket missing, refused, or its queue full) the lines are dropped and counted.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable

MAX_DATAGRAM = 60_000  # bytes; well under the kernel's default unix datagram limit
FLUSH_DELAY = 0.005  # seconds a line may wait for others to share its datagram
WARN_EVERY = 60.0  # seconds between "lines dropped" notes on stderr


class DatagramLog:
    """Callable with `<app_id> <router line>`; adds the time and batches for `flush_delay`.

    Example::

        log = DatagramLog("/srv/kiku/run/logplex.sock")
        router = Router(config, routes_socket=..., log=log)
    """

    def __init__(
        self,
        path: str,
        *,
        max_datagram: int = MAX_DATAGRAM,
        flush_delay: float = FLUSH_DELAY,
        clock: Callable[[], float] = time.time,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.max_datagram = max_datagram
        self.flush_delay = flush_delay
        self._clock = clock
        self._warn = warn if warn is not None else _stderr
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._batch: list[bytes] = []
        self._size = 0
        self._lines_extra = 0  # batch entries holding more than one line
        self._scheduled = False
        self.sent = 0  # lines
        self.dropped = 0  # lines
        self._warned_at = -WARN_EVERY
        self._dropped_at_warning = 0

    def __call__(self, line: str) -> None:
        app_id, _, message = line.partition(" ")
        self._append(f"{app_id} {self._clock():.6f} {message}\n".encode("utf-8", "replace"), 1)

    def add_stamped(self, data: bytes, lines: int) -> None:
        """Lines that carry their time already (the fast lane's): `lines` of them."""
        while len(data) > self.max_datagram:
            cut = data.rfind(b"\n", 0, self.max_datagram) + 1 or len(data)
            piece, data = data[:cut], data[cut:]
            count = piece.count(b"\n")
            self._append(piece, count)
            lines -= count
        if data:
            self._append(data, lines)

    def _append(self, data: bytes, lines: int) -> None:
        if self._size + len(data) > self.max_datagram and self._batch:
            self.flush()
        self._batch.append(data)
        self._size += len(data)
        self._lines_extra += lines - 1
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_later(self.flush_delay, self.flush)
            except RuntimeError:  # no loop (a test, or shutdown): send now
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if not self._batch:
            return
        lines = len(self._batch) + self._lines_extra
        data = b"".join(self._batch)
        self._batch.clear()
        self._size = 0
        self._lines_extra = 0
        try:
            # Unconnected sendto: each flush finds logplex again after it restarts.
            self._sock.sendto(data, self.path)
        except OSError as exc:
            # ENOENT, ECONNREFUSED (logplex away), EAGAIN, ENOBUFS (its queue full), or
            # anything else: the request path never hears of it.
            self.dropped += lines
            self._note_drops(exc.strerror or str(exc))
            return
        self.sent += lines

    def close(self) -> None:
        self.flush()
        self._sock.close()

    def _note_drops(self, reason: str) -> None:
        """At most one note a minute on stderr (the router's own log file)."""
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY:
            return
        self._warn(
            f"router log: cannot reach logplex at {self.path} ({reason}); "
            f"{self.dropped - self._dropped_at_warning} lines dropped"
        )
        self._warned_at = now
        self._dropped_at_warning = self.dropped


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
