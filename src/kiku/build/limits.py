"""`MemoryLimit`: a cgroup v1 memory cgroup for one build, so a runaway build is killed alone."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")


class MemoryLimit:
    """Holds a process (and its children) to `limit_bytes`; tells afterwards if it hit it.

    Where cgroups cannot be used (not root, no v1 memory controller) it does nothing and
    `available` is False: the build still has its timeout.
    """

    def __init__(self, name: str, limit_bytes: int, root: Path = CGROUP_MEMORY) -> None:
        self.limit_bytes = limit_bytes
        self.path = root / "kiku" / name
        self.available = False
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):  # swap accounting may be off
                (self.path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            self.available = True
        except OSError:
            self.available = False

    def enter(self) -> None:
        """Called in the child before exec (preexec_fn): the build starts inside the cgroup."""
        if self.available:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def oom_killed(self) -> bool:
        if not self.available:
            return False
        with contextlib.suppress(OSError):
            for line in (self.path / "memory.oom_control").read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill" and int(value) > 0:
                    return True
        return False

    def close(self) -> None:
        if self.available:
            with contextlib.suppress(OSError):
                self.path.rmdir()
