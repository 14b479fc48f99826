"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PgCluster:
    """Started by `start()`, stopped (fast shutdown) by `stop()`.

    PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user
    Debian's package creates.
    """

    def __init__(self, directory: Path | None = None) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed; run `make install`.")
        self.bin = binaries
        # Its own temp dir: pytest's are private to root, and the server runs as `postgres`.
        self.dir = directory or Path(tempfile.mkdtemp(prefix="kiku-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]

    @property
    def url(self) -> str:
        return f"postgresql://kiku@127.0.0.1:{self.port}/kiku"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_user, *args], capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "kiku", "-A", "trust")
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.dir} -c fsync=off"
        log = str(self.dir / "postgres.log")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )
        self._run(
            str(self.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "kiku",
            "kiku",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
