"""A real `kiku server` in a temp dir on free ports, for integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from gitpush import GitRepo, PushResult
from pgcluster import free_port

KIKU = [sys.executable, "-m", "kiku.cli.main"]


def kiku(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `kiku` command as a user would."""
    return subprocess.run(
        [*KIKU, *args], capture_output=True, text=True, env=env, input=input, cwd=cwd, timeout=60
    )


class KikuServer:
    """Started by `start()`; `stop()` sends SIGTERM and answers the exit code."""

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.api_port = free_port()
        self.router_port = free_port()
        self.router_tls_port = free_port()
        self.rendezvous_port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.log = data_dir.parent / f"server-{self.api_port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 30) -> None:
        self.process = subprocess.Popen(
            [
                *KIKU,
                "server",
                "--data-dir",
                str(self.data_dir),
                "--api-port",
                str(self.api_port),
                "--router-port",
                str(self.router_port),
                "--router-tls-port",
                str(self.router_tls_port),
                "--rendezvous-port",
                str(self.rendezvous_port),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kiku server exited early:\n{self.log.read_text()}")
            try:
                httpx.get(f"{self.url}/schema", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kiku server did not answer in {timeout}s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, *, keep_router: bool = False) -> int:
        """Stop the control plane (and, unless asked to keep it, the router it started,
        which would otherwise outlive it by design); answers the server's exit code."""
        code = 0
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            code = self.process.returncode
            self.process = None
        if not keep_router:
            from kiku.routing.processes import stop_router

            stop_router(self.data_dir / "run")
        return code

    def reap_dynos(self) -> int:
        """Stop the router and every dyno this server's data dir still runs: they outlive
        the server by design, and a test must leave nothing running. Answers how many
        dynos it stopped."""
        from kiku.routing.processes import stop_router

        stop_router(self.data_dir / "run")
        if not (self.data_dir / "dynos").exists():
            return 0
        from kiku.dynos.backends.local import LocalBackend
        from kiku.settings import Settings

        backend = LocalBackend.from_settings(Settings.from_env(self.env, data_dir=self.data_dir))
        handles = backend.adopt()
        for handle in handles:
            backend.stop(handle, 5)
            backend.remove(handle)
        backend.close()
        return len(handles)

    def create_user(self, email: str, password: str) -> dict[str, Any]:
        done = kiku(
            "admin:create-user",
            email,
            "--password",
            password,
            "--json",
            "--data-dir",
            str(self.data_dir),
            env=self.env,
        )
        assert done.returncode == 0, done.stderr
        user: dict[str, Any] = json.loads(done.stdout)
        return user

    def login(self, email: str, password: str) -> str:
        """A new account's API token (its first recovery code stands in for TOTP)."""
        user = self.create_user(email, password)
        with self.client() as api:
            response = api.post(
                "/oauth/authorizations",
                auth=(email, password),
                headers={"Heroku-Two-Factor-Code": user["recovery_codes"][0]},
            )
        token: str = response.json()["access_token"]["token"]
        return token

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Accept": "application/vnd.heroku+json; version=3"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def deploy(
        self,
        token: str,
        name: str,
        files: dict[str, str],
        workdir: Path,
        *,
        config: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], PushResult]:
        """A new app `name` (with `config`), and a first push of `files` to it."""
        with self.client(token) as api:
            created = api.post("/apps", json={"name": name})
            created.raise_for_status()
            if config:
                api.patch(f"/apps/{name}/config-vars", json=config).raise_for_status()
        repo = GitRepo(workdir / name, home=workdir / "home")
        repo.write(files)
        repo.commit("first")
        return created.json(), repo.push(f"{self.url}/{name}.git", token)


@contextlib.contextmanager
def serving(data_dir: Path, *, env: dict[str, str] | None = None) -> Iterator[KikuServer]:
    """A started server; afterwards it is stopped and every dyno it ran is reaped."""
    server = KikuServer(data_dir, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.reap_dynos()


def wait_for(check: Any, timeout: float = 60) -> Any:
    """Poll `check` until it returns something truthy (and return it), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out waiting")
