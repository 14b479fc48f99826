"""`DynoCgroup`: one dyno's cgroup v1 groups (memory, pids, cpu) under `<controller>/kiku/`.

The dyno's processes join at start (the shim writes the sandbox's pid into each group's
`cgroup.procs` before exec), so everything the app forks is limited and counted. The
groups also list the dyno's processes for `stop()`.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")


def available_controllers(root: Path = CGROUP_ROOT) -> tuple[str, ...]:
    """The v1 controllers kiku can create groups in (the others are simply not applied)."""
    found = []
    for controller in CONTROLLERS:
        base = root / controller / "kiku"
        try:
            base.mkdir(parents=True, exist_ok=True)
            probe = base / f".probe-{os.getpid()}"
            probe.mkdir(exist_ok=True)
            probe.rmdir()
            found.append(controller)
        except OSError:
            continue
    return tuple(found)


class DynoCgroup:
    """The groups of one dyno, in the controllers given (possibly none)."""

    def __init__(self, name: str, controllers: tuple[str, ...], root: Path = CGROUP_ROOT) -> None:
        self.name = name
        self.controllers = controllers
        self.paths = {c: root / c / "kiku" / name for c in controllers}

    def create(self, memory_mb: int, pids_max: int, cpu_shares: int) -> None:
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        limit = str(memory_mb * 1024 * 1024)
        self._write("memory", "memory.limit_in_bytes", limit)
        # Without swap accounting the file is missing: RAM alone is limited, which on a host
        # without swap (like kiku's) is the same thing.
        with contextlib.suppress(OSError):
            self._write("memory", "memory.memsw.limit_in_bytes", limit)
        self._write("pids", "pids.max", str(pids_max))
        self._write("cpu", "cpu.shares", str(cpu_shares))

    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a process writes its pid into to join every group."""
        return [str(path / "cgroup.procs") for path in self.paths.values()]

    def pids(self) -> list[int] | None:
        """Every process in the dyno, or None when no group can tell."""
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                return [int(p) for p in (path / "cgroup.procs").read_text().split()]
        return None

    def memory_usage(self) -> int | None:
        return self._read_int("memory", "memory.usage_in_bytes")

    def memory_limit(self) -> int | None:
        return self._read_int("memory", "memory.limit_in_bytes")

    def oom_kills(self) -> int:
        text = self._read("memory", "memory.oom_control") or ""
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self, timeout: float = 2.0) -> None:
        """Delete the groups; a group empties a moment after its last process is reaped."""
        deadline = time.monotonic() + timeout
        for path in self.paths.values():
            while path.exists():
                try:
                    path.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)

    def _write(self, controller: str, file: str, value: str) -> None:
        if controller in self.paths:
            (self.paths[controller] / file).write_text(value)

    def _read(self, controller: str, file: str) -> str | None:
        if controller not in self.paths:
            return None
        try:
            return (self.paths[controller] / file).read_text()
        except OSError:
            return None

    def _read_int(self, controller: str, file: str) -> int | None:
        text = self._read(controller, file)
        return int(text) if text else None
