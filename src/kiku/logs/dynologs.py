"""`DynoLogFollower`: brings what dynos print into the logplex.

Each dyno's shim stamps its output lines and appends them to `<dyno dir>/log`
(`<unix time> <line>`), rotating it to `log.1` when it grows (shim.py). The follower
reads every dyno's file like `tail -F`: it keeps the file open, notices rotation by inode,
and remembers its position in `log.pos`, so a restarted control plane goes on where the
last one stopped instead of repeating or losing lines. Dyno output therefore never waits
for the control plane, and a control plane that is down loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiku.logs.logplex import Logplex

log = logging.getLogger("kiku.logs")
# Bytes read from one dyno per pass: a burst is published in slices, with a pause between
# them, so tails and drains get to run and the file (not their buffers) absorbs the burst.
READ_SIZE = 8 << 10
MAX_HOLD = 0.5  # seconds a dyno's lines may wait for a busy (not stuck) consumer
SAVE_EVERY = 1.0  # seconds between writes of a dyno's log.pos


@dataclass
class Followed:
    app_id: str
    name: str
    directory: Path
    fd: int = -1
    inode: int = 0
    offset: int = 0
    rest: bytes = b""
    saved: tuple[int, int] = (0, 0)
    saved_at: float = 0.0
    held_since: float | None = None  # monotonic: when a full consumer buffer paused it
    unheld_until: float = 0.0  # no pausing until then: the last pause did not help


class DynoLogFollower:
    def __init__(
        self,
        root: Path,
        logplex: Logplex,
        interval: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.clock = clock
        self.logplex = logplex
        self.interval = interval
        self._followed: dict[str, Followed] = {}
        self._lock = threading.Lock()  # poll passes and finish() from the dyno manager
        self._stopped = threading.Event()

    def run(self) -> None:
        """Poll until `stop()`; for a thread of its own."""
        quiet = 0  # passes in a row that found nothing
        while not self._stopped.is_set():
            try:
                busy = self.poll()
            except Exception:
                log.exception("following dyno logs failed; retrying")
                busy = 0
            quiet = 0 if busy else quiet + 1
            # Busy: straight on after a breath. Quiet for a second: look less often.
            idle = self.interval * (5 if quiet * self.interval > 1.0 else 1)
            self._stopped.wait(0.001 if busy else idle)
        self.close()

    def stop(self) -> None:
        self._stopped.set()

    def poll(self) -> int:
        """One pass over every dyno directory; answers the number of lines published."""
        with self._lock:
            seen = set()
            lines = 0
            for entry in os.scandir(self.root) if self.root.is_dir() else ():
                seen.add(entry.name)
                followed = self._followed.get(entry.name)
                if followed is None:
                    followed = self._start(Path(entry.path))
                    if followed is None:
                        continue
                    self._followed[entry.name] = followed
                if self._held(followed):
                    lines += 1  # more to do soon
                    continue
                lines += self._read(followed)
            for gone in set(self._followed) - seen:
                self._forget(self._followed.pop(gone))
            return lines

    def _held(self, followed: Followed) -> bool:
        """Pause while a consumer that keeps up is more than half full, for at most
        MAX_HOLD: a burst waits in the file instead of being dropped from a buffer."""
        now = self.clock()
        if now < followed.unheld_until or self.logplex.pressure(followed.app_id) < 0.5:
            followed.held_since = None
            return False
        if followed.held_since is None:
            followed.held_since = now
        if now - followed.held_since < MAX_HOLD:
            return True
        # A consumer this slow for this long is slower than the dyno: it drops (L10, L11)
        # rather than slowing everyone else down.
        followed.held_since = None
        followed.unheld_until = now + 5 * MAX_HOLD
        return False

    def finish(self, dyno_id: str) -> None:
        """Read a dyno's last lines before its directory goes (the backend's `remove`)."""
        with self._lock:
            followed = self._followed.pop(dyno_id, None)
            if followed is None:
                followed = self._start(self.root / dyno_id)
            if followed is not None:
                self._read(followed, everything=True)
                if followed.rest:
                    self._publish(followed, followed.rest + b"\n")
                self._forget(followed, save=False)

    def close(self) -> None:
        with self._lock:
            for followed in self._followed.values():
                self._forget(followed)
            self._followed.clear()

    def _start(self, directory: Path) -> Followed | None:
        try:
            record = json.loads((directory / "handle.json").read_text())
            handle = record["handle"]
        except (OSError, ValueError, KeyError):
            return None  # not started yet, or not a dyno directory
        followed = Followed(handle["app_id"], handle["name"], directory)
        with contextlib.suppress(OSError, ValueError):
            inode, offset = json.loads((directory / "log.pos").read_text())
            followed.inode, followed.offset = int(inode), int(offset)
            followed.saved = (followed.inode, followed.offset)
        return followed

    def _read(self, followed: Followed, everything: bool = False) -> int:
        """One slice of the dyno's new output (all of it with `everything`)."""
        lines = 0
        path = followed.directory / "log"
        if followed.fd < 0 and not self._open(followed, path):
            return 0
        while True:
            data = os.read(followed.fd, READ_SIZE)
            if data:
                followed.offset += len(data)
                lines += self._publish(followed, data)
                if everything or len(data) < READ_SIZE:
                    continue
                break
            # At the end of the file we have: has the shim moved on to a new one?
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                break
            if current == followed.inode:
                break
            # Rotated: what the shim wrote before moving on is still in the old file.
            while data := os.read(followed.fd, READ_SIZE):
                lines += self._publish(followed, data)
            os.close(followed.fd)
            followed.fd, followed.inode, followed.offset = -1, 0, 0
            if not self._open(followed, path):
                break
        self._save(followed)
        return lines

    def _open(self, followed: Followed, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            # A position saved in a file since rotated: its rest is in log.1.
            return False
        inode = os.fstat(fd).st_ino
        if not followed.inode:
            # Never read before: a burst may have rotated output into log.1 already.
            with contextlib.suppress(OSError):
                followed.inode = os.stat(followed.directory / "log.1").st_ino
        if followed.inode and inode != followed.inode:
            rotated = followed.directory / "log.1"
            with contextlib.suppress(FileNotFoundError):
                old = os.open(rotated, os.O_RDONLY)
                if os.fstat(old).st_ino == followed.inode:
                    os.lseek(old, followed.offset, os.SEEK_SET)
                    while data := os.read(old, READ_SIZE):
                        self._publish(followed, data)
                os.close(old)
            followed.offset = 0
        followed.fd, followed.inode = fd, inode
        os.lseek(fd, followed.offset, os.SEEK_SET)
        return True

    def _publish(self, followed: Followed, data: bytes) -> int:
        rows = (followed.rest + data).split(b"\n")
        followed.rest = rows.pop()
        batch: list[tuple[float, str]] = []
        for row in rows:
            stamp, _, text = row.partition(b" ")
            try:
                at = float(stamp)
            except ValueError:
                at, text = time.time(), row
            batch.append((at, text.decode(errors="replace")))
        if batch:
            self.logplex.publish_stamped(followed.app_id, "app", followed.name, batch)
        return len(batch)

    def _save(self, followed: Followed, force: bool = False) -> None:
        position = (followed.inode, followed.offset - len(followed.rest))
        now = time.monotonic()
        if position == followed.saved or (not force and now - followed.saved_at < SAVE_EVERY):
            return
        with contextlib.suppress(OSError):
            partial = followed.directory / "log.pos.partial"
            partial.write_text(json.dumps(list(position)))
            partial.replace(followed.directory / "log.pos")
            followed.saved, followed.saved_at = position, now

    def _forget(self, followed: Followed, save: bool = True) -> None:
        if save:
            self._save(followed, force=True)
        if followed.fd >= 0:
            os.close(followed.fd)
            followed.fd = -1
