"""`Logplex`: one log stream per app, fed by dynos, the router, builds, the dyno manager and
the API; read as history (the last 1500 lines), by tail sessions and by drains.

    logplex = Logplex(data_dir / "logs" / "apps")
    logplex.publish(app_id, "app", "api", "Release v5 created by user jane@example.com")
    logplex.history(app_id, 100, source="app", dyno="web")   # [LogLine, ...]
    logplex.attach(app_id, sink)                            # sink.offer(line) for every new line

Publishing is thread-safe and never blocks on a consumer: sinks (tail sessions, drains,
metrics) take a line without waiting, and drop (saying so, L10/L11) when they fall behind.
The history survives a restart of `kiku server`: each app's lines are appended to a file
(`flush()`, called by `LogplexPart`), compacted to the last 1500 when it doubles.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from kiku.logs.lines import LogLine, rfc3339, split

HISTORY = 1500


class Sink(Protocol):
    """Takes lines without blocking; called with the logplex lock held, in order. A sink
    may also have `offer_many(lines)`, which logplex then calls once per batch instead."""

    def offer(self, line: LogLine) -> None: ...


class Watcher(Protocol):
    def observe(self, app_id: str, line: LogLine) -> None:
        """Every app's lines (metrics); as `Sink.offer`: never blocking, lock held, in order."""


class Channel:
    """One app's stream: its recent lines, its sinks, lines not yet on disk."""

    def __init__(self, path: Path, history: int) -> None:
        self.path = path
        self.lines: deque[LogLine] = deque(maxlen=history)
        self.sinks: list[Sink] = []
        self.unwritten: list[LogLine] = []
        self.on_disk = 0  # lines in the file, to know when to compact it
        self.seq = 0
        self._load()

    def _load(self) -> None:
        try:
            with self.path.open(encoding="utf-8", errors="replace") as f:
                rows = f.read().splitlines()
        except FileNotFoundError:
            return
        self.on_disk = len(rows)
        for row in rows[-self.lines.maxlen :] if self.lines.maxlen else rows:
            parts = row.split("\t", 4)
            if len(parts) != 5:
                continue  # a line torn by a crash mid-write
            with contextlib.suppress(ValueError):
                self.lines.append(LogLine(int(parts[0]), float(parts[1]), *parts[2:]))
        if self.lines:
            self.seq = self.lines[-1].seq


class Logplex:
    def __init__(
        self,
        directory: Path,
        *,
        history: int = HISTORY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.history_size = history
        self.clock = clock
        self._channels: dict[str, Channel] = {}
        self._watchers: list[Watcher] = []
        # Destroyed apps (ids are never reused): their dynos' last words go nowhere.
        self._forgotten: set[str] = set()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _channel(self, app_id: str) -> Channel:
        channel = self._channels.get(app_id)
        if channel is None:
            channel = Channel(self.directory / f"{app_id}.log", self.history_size)
            self._channels[app_id] = channel
        return channel

    def publish(
        self, app_id: str, source: str, process: str, message: str, at: float | None = None
    ) -> None:
        self.publish_many(app_id, source, process, (message,), at)

    def publish_many(
        self,
        app_id: str,
        source: str,
        process: str,
        messages: Iterable[str],
        at: float | None = None,
    ) -> None:
        """Lines of one source and process, at one time, in order."""
        when = self.clock() if at is None else at
        self.publish_stamped(app_id, source, process, [(when, m) for m in messages])

    def publish_stamped(
        self, app_id: str, source: str, process: str, entries: Iterable[tuple[float, str]]
    ) -> None:
        """Lines each with the time it was written (dyno output, router lines); a message
        of several lines, or over 10000 bytes, becomes several lines."""
        pieces: list[tuple[float, str, str]] = []
        last_at, stamp = -1.0, ""
        for at, message in entries:
            if at != last_at:  # lines of one read share their time: format it once
                last_at, stamp = at, rfc3339(at)
            pieces.extend((at, stamp, piece) for piece in _pieces(message))
        with self._lock:
            if app_id in self._forgotten:
                return
            channel = self._channel(app_id)
            seq = channel.seq
            lines = [
                LogLine(seq := seq + 1, at, source, process, piece, stamp)
                for at, stamp, piece in pieces
            ]
            channel.seq = seq
            channel.lines.extend(lines)
            channel.unwritten.extend(lines)
            for sink in channel.sinks:
                offer_many = getattr(sink, "offer_many", None)
                if offer_many is not None:
                    offer_many(lines)
                else:
                    for line in lines:
                        sink.offer(line)
            for watcher in self._watchers:
                for line in lines:
                    watcher.observe(app_id, line)

    def history(
        self, app_id: str, lines: int, *, source: str | None = None, dyno: str | None = None
    ) -> list[LogLine]:
        """The last `lines` lines that pass the filters, oldest first."""
        with self._lock:
            recent = list(self._channel(app_id).lines)
        if source or dyno:
            recent = [line for line in recent if line.matches(source, dyno)]
        return recent[-lines:] if lines > 0 else []

    def since(self, app_id: str, seq: int) -> list[LogLine]:
        """Lines after `seq` still in the history (a tail session resuming)."""
        with self._lock:
            return [line for line in self._channel(app_id).lines if line.seq > seq]

    def attach(self, app_id: str, sink: Sink, *, after: int | None = None) -> list[LogLine]:
        """Start offering the app's new lines to `sink`; returns the lines after `after` that
        it missed, atomically (no line is both returned and offered, none is lost)."""
        with self._lock:
            channel = self._channel(app_id)
            channel.sinks.append(sink)
            if after is None:
                return []
            return [line for line in channel.lines if line.seq > after]

    def pressure(self, app_id: str) -> float:
        """How full the fullest buffer of the app's sinks is (0 to 1), counting only sinks
        that are keeping up (`pressure()`); a reader may pause briefly while it is high,
        so a burst waits in the dyno's log file instead of overflowing a buffer."""
        with self._lock:
            channel = self._channels.get(app_id)
            sinks = list(channel.sinks) if channel is not None else []
        levels = [probe() for sink in sinks if (probe := getattr(sink, "pressure", None))]
        return max(levels, default=0.0)

    def detach(self, app_id: str, sink: Sink) -> None:
        with self._lock:
            channel = self._channels.get(app_id)
            if channel is not None and sink in channel.sinks:
                channel.sinks.remove(sink)

    def watch(self, watcher: Watcher) -> None:
        """Show every app's lines to `watcher` (metrics), with the app's id."""
        with self._lock:
            self._watchers.append(watcher)

    def forget(self, app_id: str) -> None:
        """The app is gone: drop its stream and its file."""
        with self._lock:
            self._forgotten.add(app_id)
            self._channels.pop(app_id, None)
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{app_id}.log").unlink()

    def flush(self) -> None:
        """Append unwritten lines to each app's file; rewrite a file grown past twice the
        history as the last `history` lines (atomically). Disk I/O happens outside the
        publishing lock, so a slow disk never holds up a dyno's output."""
        with self._flushing:
            with self._lock:
                pending = []
                for channel in self._channels.values():
                    if not channel.unwritten:
                        continue
                    if channel.on_disk + len(channel.unwritten) > 2 * self.history_size:
                        pending.append((channel, list(channel.lines), True))
                    else:
                        pending.append((channel, channel.unwritten, False))
                    channel.unwritten = []
            for channel, lines, rewrite in pending:
                self._write(channel, lines, rewrite)

    def _write(self, channel: Channel, lines: list[LogLine], rewrite: bool) -> None:
        if channel.path.stem in self._forgotten:
            return
        text = "".join(
            f"{line.seq}\t{line.at!r}\t{line.source}\t{line.process}\t{line.message}\n"
            for line in lines
        )
        if rewrite:
            partial = channel.path.with_suffix(".partial")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(partial, channel.path)
            channel.on_disk = len(lines)
            return
        fd = os.open(channel.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        channel.on_disk += len(lines)


def _pieces(message: str) -> list[str]:
    """One message as log lines: one per text line, each at most 10000 bytes."""
    rows = message.splitlines() if "\n" in message or "\r" in message else (message,)
    # 2500 characters are at most 10000 bytes of UTF-8: only longer rows need measuring.
    return [piece for row in rows for piece in (split(row) if len(row) > 2500 else (row,))]
