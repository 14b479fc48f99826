"""The `Backend` seam: all the dyno manager needs from whatever runs dynos.

A backend is to the dyno manager what a transport is to httpx: a few methods, one real
implementation per engine (`backends/local.py` for sandboxed processes on this host; a
Swarm or Kubernetes one later), and a fake for tests (`backends/fake.py`).

Example::

    backend = LocalBackend(LocalSettings(...))
    handle = backend.start(spec)
    status = backend.inspect(handle)        # DynoStatus(running=True, ...)
    backend.stop(handle, grace=30.0)        # SIGTERM, then SIGKILL after `grace`
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class DynoSpec:
    """Everything needed to start one dyno; the backend adds nothing of its own choosing."""

    dyno_id: str  # unique per dyno instance (a uuid)
    app_id: str
    app_name: str
    name: str  # "web.1", "worker.2", "run.4821", "release.1234"
    release_version: int
    slug: Path  # the slug tarball (tar.gz of /app) in the blob store
    command: str  # run by bash -c after sourcing .profile.d and .profile
    env: dict[str, str]  # config vars plus DYNO, PORT (web), ... as the manager decides
    memory_mb: int = 512
    pids_max: int = 256
    cpu_shares: int = 1024
    # Web dynos listen on this port inside their own network namespace.
    port: int | None = None
    # One-off dynos attached to a terminal: stdin/stdout through a pty or pipes.
    attach: bool = False
    tty: bool = False


@dataclass(frozen=True)
class DynoHandle:
    """How a backend finds a dyno again, also after the control plane restarted."""

    dyno_id: str
    name: str
    app_id: str
    # Where the router reaches a web dyno: host and port.
    address: str | None = None
    port: int | None = None
    pid: int | None = None
    started_at: float = 0.0


@dataclass(frozen=True)
class DynoStatus:
    running: bool
    exit_code: int | None = None  # set once it exited; 137 after a SIGKILL (OOM included)
    oom_killed: bool = False
    memory_bytes: int | None = None  # current usage, for R14 and metrics
    memory_limit_bytes: int | None = None


@dataclass
class Attachment:
    """An attached one-off dyno's streams (file descriptors the caller owns and closes)."""

    stdin_fd: int
    stdout_fd: int
    extra: dict[str, int] = field(default_factory=dict)


class Backend(Protocol):
    def start(self, spec: DynoSpec) -> DynoHandle:
        """Start the dyno and return at once (booting continues in the background)."""

    def attach(self, handle: DynoHandle) -> Attachment | None:
        """The streams of a dyno started with `attach=True`; None otherwise."""

    def stop(self, handle: DynoHandle, grace: float) -> None:
        """SIGTERM to every process of the dyno, SIGKILL after `grace` seconds; returns
        when it is gone. Stopping a dyno that already exited is not an error."""

    def inspect(self, handle: DynoHandle) -> DynoStatus:
        """Whether it runs, and how it ended."""

    def adopt(self) -> list[DynoHandle]:
        """Dynos this backend runs now, found afresh (after a control-plane restart)."""

    def remove(self, handle: DynoHandle) -> None:
        """Forget an exited dyno: free its private layer, network and cgroup."""

    def close(self) -> None:
        """Release the backend's own resources; running dynos keep running."""
