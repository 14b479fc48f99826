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
from typing import Any

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
        tls_port: int | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        workers: int = 0,
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
        # HTTPS: kiku's certificate for *.DOMAIN; custom domains' own come through the feed.
        self.tls_port = tls_port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.workers = workers  # 0: one per core
        self.check_every = check_every
        self._stopped = asyncio.Event()

    def running(self) -> int | None:
        """The pid of our router if it runs (started with the command we would use), else
        None."""
        record = self._record()
        pid = int(record.get("pid", 0))
        same = record.get("command") == self.command()
        if pid and same and _start_time(pid) == record.get("start_time"):
            return pid
        return None

    def _record(self) -> dict[str, Any]:
        try:
            record = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def command(self) -> list[str]:
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
        if self.tls_port is not None and self.tls_cert is not None:
            command += ["--tls-port", str(self.tls_port), "--tls-cert", str(self.tls_cert)]
            if self.tls_key is not None:
                command += ["--tls-key", str(self.tls_key)]
        return command

    def start(self) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = self.command()
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
            "command": command,
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
                # A router started otherwise (other ports, certificate, workers) goes first:
                # two on one port would share it.
                await asyncio.to_thread(stop_router, self.record.parent)
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
