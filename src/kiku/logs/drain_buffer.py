"""`DrainBuffer`: the lines one drain has not delivered yet, at most 1024 (Heroku's L10).

Logplex offers lines with its lock held, so `offer` never waits on the drain: when the
buffer is full the oldest line goes, and the drop is counted for the next `Error L10`.
"""

from __future__ import annotations

import threading
from collections import deque

from kiku.logs.lines import LogLine

CAPACITY = 1024
# What a line costs in a frame besides its message: PRI, timestamp, host, source, process.
FRAME_OVERHEAD = 100


class DrainBuffer:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._lines: deque[LogLine] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._dropped = 0
        self._dropped_since = 0.0
        self.total_dropped = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._lines)

    def offer(self, line: LogLine) -> None:
        with self._ready:
            if len(self._lines) >= self.capacity:
                self._lines.popleft()
                if not self._dropped:
                    self._dropped_since = line.at
                self._dropped += 1
                self.total_dropped += 1
            self._lines.append(line)
            self._ready.notify()

    def offer_many(self, lines: list[LogLine]) -> None:
        """`offer` for a batch, with one lock and one wake-up (logplex's hot path)."""
        with self._ready:
            self._lines.extend(lines)
            over = len(self._lines) - self.capacity
            if over > 0:
                if not self._dropped:
                    self._dropped_since = self._lines[0].at
                for _ in range(over):
                    self._lines.popleft()
                self._dropped += over
                self.total_dropped += over
            self._ready.notify()

    def take(self, max_lines: int, max_bytes: int, timeout: float | None) -> list[LogLine]:
        """The oldest lines, about `max_bytes` of frames (at least one line); waits up to
        `timeout` for one to arrive, answering [] if none did. Once closed, never waits."""
        with self._ready:
            if not self._lines and not self._closed:
                self._ready.wait(timeout)
            taken: list[LogLine] = []
            size = 0
            while self._lines and len(taken) < max_lines:
                cost = len(self._lines[0].message) + FRAME_OVERHEAD
                if taken and size + cost > max_bytes:
                    break
                taken.append(self._lines.popleft())
                size += cost
            return taken

    def take_dropped(self) -> tuple[int, float]:
        """How many lines were dropped since when, counting afresh from now."""
        with self._ready:
            dropped, since = self._dropped, self._dropped_since
            self._dropped = 0
            return dropped, since

    @property
    def dropped(self) -> int:
        """Lines dropped since the last `take_dropped`."""
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """The drain is closing: a waiting `take` returns now, later ones do not wait."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
