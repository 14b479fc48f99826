"""Dynos outlive `kiku server`: a clean stop (SIGTERM) or a crash (SIGKILL) of the control
plane neither stops nor restarts them, and the next start adopts them (issue 4).

The pids come from the local backend's state, `<data_dir>/dynos/<dyno_id>/handle.json`
(the detached shim) and `sandbox.json` (bubblewrap, written by the shim); the `dynos` table
has no pid. Each web dyno also answers with a token drawn once at boot, so an answer that
did not change proves the very same process is still serving.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from kikuserver import KikuServer

PASSWORD = "correct horse battery"
EMAIL = "survival@example.com"
APP = "survivor"
SERVER = """import http.server, os, uuid
BOOT = uuid.uuid4().hex
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.environ['DYNO']} {os.getpid()} {BOOT}".encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""
PROCFILE = "web: python3 hello.py\nworker: sleep 1000000\n"
NAMES = ["web.1", "web.2", "worker.1"]
T = TypeVar("T")


@dataclass(frozen=True)
class Running:
    """What identifies one running dyno instance."""

    id: str
    shim: tuple[int, int]  # (pid, start time in clock ticks since boot)
    sandbox: tuple[int, int]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KikuServer]:
    server = KikuServer(tmp_path / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)
        server.reap_dynos()


def wait_for(check: Callable[[], T], timeout: float = 30, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


def login(server: KikuServer) -> str:
    user = server.create_user(EMAIL, PASSWORD)
    with server.client() as api:
        response = api.post(
            "/oauth/authorizations",
            auth=(EMAIL, PASSWORD),
            headers={"Heroku-Two-Factor-Code": user["recovery_codes"][0]},
        )
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]["token"]
    return token


def dynos(api: httpx.Client) -> dict[str, dict[str, Any]]:
    response = api.get(f"/apps/{APP}/dynos")
    assert response.status_code == 200, response.text
    return {d["name"]: d for d in response.json()}


def all_up(api: httpx.Client) -> dict[str, dict[str, Any]] | None:
    found = dynos(api)
    if sorted(found) == NAMES and all(d["state"] == "up" for d in found.values()):
        return found
    return None


def addresses(server: KikuServer) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(server.data_dir / "kiku.db") as db:
        rows = db.execute("SELECT name, address, port FROM dynos WHERE port IS NOT NULL")
        return {name: (address, port) for name, address, port in rows}


def answer(address: tuple[str, int]) -> str:
    return httpx.get(f"http://{address[0]}:{address[1]}/", timeout=2).text


def dyno_dirs(server: KikuServer) -> set[str]:
    root = server.data_dir / "dynos"
    return {path.name for path in root.iterdir() if path.is_dir()} if root.exists() else set()


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if stat[0] == "Z" else int(stat[19])


def running(server: KikuServer, dyno_id: str) -> Running:
    state = server.data_dir / "dynos" / dyno_id
    handle = json.loads((state / "handle.json").read_text())
    sandbox = wait_for(
        lambda: (
            (state / "sandbox.json").exists() and json.loads((state / "sandbox.json").read_text())
        ),
        what=f"{dyno_id}/sandbox.json",
    )
    return Running(
        id=dyno_id,
        shim=(handle["handle"]["pid"], handle["shim_start"]),
        sandbox=(sandbox["pid"], sandbox["start"]),
    )


def alive(pid_and_start: tuple[int, int]) -> bool:
    pid, start = pid_and_start
    return start_time(pid) == start


def snapshot(server: KikuServer, api: httpx.Client) -> dict[str, Any]:
    """Everything that must not change across a restart of the control plane."""
    listed = dynos(api)
    web = addresses(server)
    return {
        "ids": {name: d["id"] for name, d in listed.items()},
        "created": {name: d["created_at"] for name, d in listed.items()},
        "processes": {name: running(server, d["id"]) for name, d in listed.items()},
        "answers": {name: answer(web[name]) for name in NAMES if name.startswith("web.")},
        "addresses": web,
        "dirs": dyno_dirs(server),
    }


def test_dynos_survive_restarts_and_crashes_of_kiku_server(
    server: KikuServer, tmp_path: Path
) -> None:
    token = login(server)
    _, pushed = server.deploy(token, APP, {"Procfile": PROCFILE, "hello.py": SERVER}, tmp_path)
    assert pushed.returncode == 0, pushed.output

    with server.client(token) as api:
        scaled = api.patch(
            f"/apps/{APP}/formation",
            json={"updates": [{"type": "web", "quantity": 2}, {"type": "worker", "quantity": 1}]},
        )
        assert scaled.status_code == 200, scaled.text
        wait_for(lambda: all_up(api), what="web.1, web.2 and worker.1 up")
        web = addresses(server)
        wait_for(
            lambda: all((_answer_or_none(web[n]) or "").startswith(n) for n in ("web.1", "web.2")),
            what="web dynos answering",
        )
        before = snapshot(server, api)

    assert set(before["ids"].values()) == before["dirs"], "one state dir per listed dyno"
    for name, process in before["processes"].items():
        assert alive(process.shim) and alive(process.sandbox), name
    for name in ("web.1", "web.2"):
        assert before["answers"][name].startswith(f"{name} "), before["answers"]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        code = server.stop(sig)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), (
            f"kiku server exit code {code} after {sig.name}"
        )
        # The control plane is down: the dynos are not.
        for name, process in before["processes"].items():
            assert alive(process.shim) and alive(process.sandbox), f"{name} after {sig.name}"
        for name, text in before["answers"].items():
            assert answer(before["addresses"][name]) == text, f"{name} while kiku is down"
        time.sleep(0.5)  # anything the stopping server set off has had time to land
        assert answer(before["addresses"]["web.1"]) == before["answers"]["web.1"]

        server.start()
        with server.client(token) as api:
            wait_for(lambda: all_up(api), what=f"dynos up after the {sig.name} restart")
            time.sleep(1.5)  # several reconcile passes: a restart would show by now
            after = snapshot(server, api)
            listed = dynos(api)
        assert {n: d["state"] for n, d in listed.items()} == dict.fromkeys(NAMES, "up")
        for key in ("ids", "created", "processes", "answers", "addresses", "dirs"):
            assert after[key] == before[key], f"{key} changed across the {sig.name} restart"
        for name, process in after["processes"].items():
            assert alive(process.shim) and alive(process.sandbox), name
        log = server.log.read_text()
        assert "Starting process" not in log and "Stopping" not in log, log

    with server.client(token) as api:
        scaled = api.patch(
            f"/apps/{APP}/formation",
            json={"updates": [{"type": "web", "quantity": 0}, {"type": "worker", "quantity": 0}]},
        )
        assert scaled.status_code == 200, scaled.text
        wait_for(lambda: dynos(api) == {}, what="no dynos listed after scaling to 0")
    wait_for(lambda: dyno_dirs(server) == set(), what="dyno state dirs removed")
    for name, process in before["processes"].items():
        assert not alive(process.shim) and not alive(process.sandbox), f"{name} still runs"
    for name, address in before["addresses"].items():
        # Gone, or something else (this host routes unknown addresses onwards) answering.
        assert _answer_or_none(address) != before["answers"][name], f"{name} still answers"
    server.stop()
    assert server.reap_dynos() == 0


def _answer_or_none(address: tuple[str, int]) -> str | None:
    try:
        return answer(address)
    except httpx.TransportError:
        return None
