"""`RouterProcesses`: keeps kiku's router running as its own process, outside the control
plane, so that restarting `kiku server` drops no request.

The router is started detached and recorded in `<data_dir>/run/router.json`; a control
plane that starts later adopts it instead of starting another. Stopping the control plane
leaves it serving (like dynos); `stop_router()` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("kiku.routing")


def _start_time(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if fields[0] != "Z" else None


class RouterProcesses:
    name = "router"

    def __init__(
        self,
        run_dir: Path,
        log_file: Path,
        *,
        host: str,
        port: int,
        routes_socket: Path,
        log_socket: Path | None = None,
        workers: int = 1,
        check_every: float = 1.0,
    ) -> None:
        self.record = run_dir / "router.json"
        self.log_file = log_file
        self.host = host
        self.port = port
        self.routes_socket = routes_socket
        # Request log lines go to logplex on this socket, not to `log_file`, which keeps
        # only the router's own complaints.
        self.log_socket = log_socket or routes_socket.parent / "logplex.sock"
        self.workers = workers
        self.check_every = check_every
        self._stopped = asyncio.Event()

    def running(self) -> int | None:
        """The pid of our router if it runs (and listens where we want), else None."""
        try:
            record = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        pid = int(record.get("pid", 0))
        same = record.get("port") == self.port and record.get("host") == self.host
        if pid and same and _start_time(pid) == record.get("start_time"):
            return pid
        return None

    def start(self) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "kiku.router",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--routes-socket",
            str(self.routes_socket),
            "--log-socket",
            str(self.log_socket),
            "--workers",
            str(self.workers),
        ]
        with self.log_file.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # not in kiku server's process group: it outlives it
            )
        record = {
            "pid": process.pid,
            "start_time": _start_time(process.pid),
            "host": self.host,
            "port": self.port,
        }
        self.record.parent.mkdir(parents=True, exist_ok=True)
        self.record.write_text(json.dumps(record))
        return process.pid

    async def run(self) -> None:
        pid = self.running()
        if pid is not None:
            log.info("router already running (pid %d): adopted", pid)
        while not self._stopped.is_set():
            if self.running() is None:
                pid = await asyncio.to_thread(self.start)
                log.info("router started (pid %d) on %s:%d", pid, self.host, self.port)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=self.check_every)

    def stop(self) -> None:
        self._stopped.set()


def stop_router(run_dir: Path, timeout: float = 15.0) -> bool:
    """End the router recorded in `run_dir` (SIGTERM, then SIGKILL); whether one ran."""
    try:
        record = json.loads((run_dir / "router.json").read_text())
    except (OSError, ValueError):
        return False
    pid = int(record.get("pid", 0))
    if not pid or _start_time(pid) != record.get("start_time"):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _start_time(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
