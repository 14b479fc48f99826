"""Dyno figures against a real `kiku server`: start latency, scaling, config:set and push
until the new release answers.

    .venv/bin/python bench/dynos.py [--starts 5] [--configs 5] [--python 3.11.7]

Starts `kiku server` on free ports in a temp data dir (as bench/api_requests.py does: rate
limit lifted), creates a user, logs in with a recovery code, and measures:

  1. dyno start latency: from `PATCH /formation web=1` (after a scale to 0) until web.1
     answers HTTP at its address (median of --starts);
  2. `ps:scale web=10`: from the PATCH until all 10 are `up` in the API and answer HTTP,
     then back to 0 until the API lists none;
  3. `config:set` -> new release answering: from `PATCH /config-vars` until kiku's router
     answers (by Host) from web.1 with the new value from its environment (median of
     --configs);
  4. `git push` -> new release answering, for a small Flask app (flask + gunicorn): until
     the router answers from the new release (its HEROKU_RELEASE_VERSION, labs
     runtime-dyno-metadata), for the first push of a fresh app and an unchanged re-push
     (an empty commit).

1 and 2 ask each dyno at its own address and port (as the `dynos` table stores them), 3
and 4 go through the router, as a user's request does. Apps 1-3 are Procfile-only (no
buildpack work). This prints figures beside the issue's targets; it does not judge them.
Whatever happens, the server is stopped and every dyno it ran is reaped.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The sibling benches' server, login and git handling, reused.
from api_requests import (
    ACCEPT,
    Server,
    create_user,
    kiku_command,
    login,
    reap,
    running_server,
    wait_for_server_command,
)
from push import Repo, python_version

TARGETS = {"scale10": 5.0, "config": 1.5, "first": 4.5, "unchanged": 1.5}
POLL = 0.01
T = TypeVar("T")
ECHO = """import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.environ['DYNO']} {os.environ.get('GREETING', '-')}".encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""
# The release it runs (labs runtime-dyno-metadata) tells a new release from the old one.
FLASK = """import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "hello from flask " + os.environ.get("HEROKU_RELEASE_VERSION", "?")
"""


# -- waiting and probing -------------------------------------------------------------------


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL)


def get(address: str, port: int, host: str | None = None) -> str | None:
    """The body of a 200 answer at the address (a dyno's, or the router's with the app's
    Host), or None (not there yet)."""
    conn = http.client.HTTPConnection(address, port, timeout=5.0)
    try:
        conn.request("GET", "/", headers={"Host": host} if host else {})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        return body if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class Dynos:
    """The `dynos` table (read-only): where each web dyno listens. The API does not show it."""

    def __init__(self, server: Server) -> None:
        self.db = server.data_dir / "kiku.db"

    def rows(self, app_id: str) -> dict[str, dict[str, Any]]:
        with sqlite3.connect(self.db, timeout=5) as db:
            db.row_factory = sqlite3.Row
            found = db.execute(
                "SELECT id, name, state, address, port, release_version FROM dynos "
                "WHERE app_id = ?",
                (app_id,),
            )
            return {row["name"]: dict(row) for row in found}

    def answer(
        self, app_id: str, name: str, *, version: int | None = None, body: str | None = None
    ) -> str | None:
        """What `name` answers, if it runs `version` (when given) and answers `body` (when
        given, a prefix)."""
        row = self.rows(app_id).get(name)
        if row is None or row["address"] is None or row["port"] is None:
            return None
        if version is not None and row["release_version"] != version:
            return None
        text = get(row["address"], row["port"])
        if text is None or (body is not None and not text.startswith(body)):
            return None
        return text


# -- the platform --------------------------------------------------------------------------


class Bench:
    def __init__(self, server: Server, token: str, root: Path) -> None:
        self.server = server
        self.token = token
        self.root = root
        self.api = httpx.Client(
            base_url=server.url, headers={**ACCEPT, "Authorization": f"Bearer {token}"}, timeout=30
        )
        self.dynos = Dynos(server)

    def create_app(self, name: str) -> str:
        response = self.api.post("/apps", json={"name": name})
        response.raise_for_status()
        app_id: str = response.json()["id"]
        return app_id

    def push(self, name: str, files: dict[str, str]) -> tuple[Repo, float]:
        repo = Repo(self.root / name, self.root / "home", self.token)
        for path, text in files.items():
            (repo.path / path).write_text(text)
        repo.commit("first")
        seconds, _ = repo.push(f"{self.server.url}/{name}.git")
        return repo, seconds

    def routed(self, app: str, body: str) -> str | None:
        """What the router answers for `app`, if it is `body`."""
        text = get("127.0.0.1", self.server.router_port, f"{app}.localhost")
        return text if text == body else None

    def scale(self, app: str, quantity: int) -> None:
        response = self.api.patch(f"/apps/{app}/formation/web", json={"quantity": quantity})
        response.raise_for_status()

    def listed(self, app: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/apps/{app}/dynos")
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def latest_version(self, app: str) -> int:
        response = self.api.get(
            f"/apps/{app}/releases", headers={"Range": "version ..; order=desc, max=1"}
        )
        response.raise_for_status()
        version: int = response.json()[0]["version"]
        return version

    def scale_to_zero(self, app: str) -> float:
        started = time.perf_counter()
        self.scale(app, 0)
        wait_for(lambda: self.listed(app) == [], f"{app} scaled to 0")
        return time.perf_counter() - started


# -- the measurements ----------------------------------------------------------------------


def until_all(checks: dict[str, Callable[[], bool]], what: str) -> dict[str, float]:
    """Poll every check until all have held once; answers when each first held, in seconds
    from the call. Checks are independent: one holding does not wait for another."""
    started = time.perf_counter()
    held: dict[str, float] = {}

    def done() -> bool:
        for key, check in checks.items():
            if key not in held and check():
                held[key] = time.perf_counter() - started
        return len(held) == len(checks)

    wait_for(done, what)
    return held


def web_up(bench: Bench, app: str, quantity: int) -> Callable[[], bool]:
    def check() -> bool:
        listed = bench.listed(app)
        return len(listed) == quantity and all(d["state"] == "up" for d in listed)

    return check


def answers(bench: Bench, app_id: str, name: str) -> Callable[[], bool]:
    return lambda: bench.dynos.answer(app_id, name, body="<!DOCTYPE") is not None


def start_latency(bench: Bench, app: str, app_id: str, rounds: int) -> None:
    samples, up = [], []
    for _ in range(rounds):
        bench.scale_to_zero(app)
        started = time.perf_counter()
        bench.scale(app, 1)
        checks = {"up": web_up(bench, app, 1), "answer": answers(bench, app_id, "web.1")}
        held = until_all(checks, "web.1 up and answering")
        offset = time.perf_counter() - started - max(held.values())
        samples.append(held["answer"] + offset)
        up.append(held["up"] + offset)
    print(
        f"1. dyno start latency, PATCH formation web=1 -> web.1 answers HTTP: "
        f"median {statistics.median(samples):.2f} s ({_all(samples)}); "
        f"`up` in the API after median {statistics.median(up):.2f} s"
    )


def scale_ten(bench: Bench, app: str, app_id: str) -> None:
    bench.scale_to_zero(app)
    started = time.perf_counter()
    bench.scale(app, 10)
    checks = {"up": web_up(bench, app, 10)}
    checks |= {f"web.{i}": answers(bench, app_id, f"web.{i}") for i in range(1, 11)}
    held = until_all(checks, "10 web dynos up and answering")
    offset = time.perf_counter() - started - max(held.values())
    up = held.pop("up") + offset
    answering = max(held.values()) + offset
    print(
        f"2. ps:scale web=10 (from 0): all 10 up in the API after {up:.2f} s, all answering "
        f"HTTP after {answering:.2f} s  [target <= {TARGETS['scale10']:.0f} s on 2 cores; "
        f"this host: {os.cpu_count()} cores]"
    )
    down = bench.scale_to_zero(app)
    print(f"   ps:scale web=0 (from 10): none listed after {down:.2f} s")


def config_set(bench: Bench, app: str, app_id: str, rounds: int) -> None:
    bench.scale(app, 1)
    wait_for(lambda: bench.dynos.answer(app_id, "web.1", body="web.1 "), "web.1 answering")
    samples = []
    for n in range(rounds):
        value = f"value-{n}-{time.time_ns()}"
        started = time.perf_counter()
        response = bench.api.patch(f"/apps/{app}/config-vars", json={"GREETING": value})
        response.raise_for_status()
        wait_for(
            lambda v=value: bench.routed(app, f"web.1 {v}"),
            "web.1 answering with the new config through the router",
        )
        samples.append(time.perf_counter() - started)
    print(
        f"3. config:set -> the router answers from the new release's web.1 (new value): "
        f"median {statistics.median(samples):.2f} s ({_all(samples)})  "
        f"[target <= {TARGETS['config']:.1f} s]"
    )


def push_to_answer(bench: Bench, version: str) -> None:
    name = "bench-dynos-flask"
    app_id = bench.create_app(name)
    repo = Repo(bench.root / name, bench.root / "home", bench.token)
    (repo.path / "requirements.txt").write_text("flask\ngunicorn\n")
    (repo.path / "runtime.txt").write_text(f"python-{version}\n")
    (repo.path / "Procfile").write_text("web: gunicorn -b 0.0.0.0:$PORT app:app\n")
    (repo.path / "app.py").write_text(FLASK)
    repo.commit("flask app")
    feature = f"/apps/{name}/features/runtime-dyno-metadata"
    bench.api.patch(feature, json={"enabled": True}).raise_for_status()
    url = f"{bench.server.url}/{name}.git"
    print(
        f"4. git push -> the router answers from the new release, Flask app (flask + "
        f"gunicorn, Python {version}):"
    )
    for key, label in (
        ("first", "first push, fresh app"),
        ("unchanged", "unchanged re-push (empty commit)"),
    ):
        if key == "unchanged":
            repo.commit("unchanged", allow_empty=True)
        total, pushed, release, listed = push_once(bench, repo, url, name, app_id)
        print(
            f"   {label}: {total:.2f} s  [target <= {TARGETS[key]:.1f} s]\n"
            f"      git push returned after {pushed:.2f} s; v{release}'s web.1 listed "
            f"(starting) at {listed:.2f} s; answering at {total:.2f} s"
        )


def push_once(
    bench: Bench, repo: Repo, url: str, name: str, app_id: str
) -> tuple[float, float, int, float]:
    """Seconds until the new release's web.1 answers, the push's own seconds, the release,
    and when its web.1 first appeared in the `dynos` table."""
    started = time.perf_counter()
    pushed, _ = repo.push(url)
    release = bench.latest_version(name)
    seen: list[float] = []

    def answering() -> str | None:
        row = bench.dynos.rows(app_id).get("web.1")
        if not seen and row is not None and row["release_version"] == release:
            seen.append(time.perf_counter() - started)
        return bench.routed(name, f"hello from flask v{release}")

    wait_for(answering, f"v{release} answering through the router")
    total = time.perf_counter() - started
    return total, pushed, release, seen[0] if seen else total


# -- the run -------------------------------------------------------------------------------


def run(starts: int, configs: int, version: str | None) -> None:
    kiku = kiku_command()
    wait_for_server_command(kiku)
    root = Path(tempfile.mkdtemp(prefix="kiku-bench-dynos-"))
    data_dir = root / "data"
    began = time.perf_counter()
    try:
        with running_server(kiku, data_dir) as server:
            print(f"kiku server pid {server.process.pid} at {server.url}; {os.cpu_count()} cores")
            user = create_user(kiku, server.data_dir, "bench@example.com")
            with httpx.Client(base_url=server.url, headers=ACCEPT, timeout=30) as client:
                _, token = login(client, user, user.recovery_codes[0])
            bench = Bench(server, token, root)
            try:
                measure(bench, starts, configs, python_version(version))
            finally:
                bench.api.close()
    finally:
        try:
            reaped = reap(data_dir)
            print(f"(reaped {reaped} dyno(s) left running after the server stopped)")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"(bench took {time.perf_counter() - began:.1f} s)")


def measure(bench: Bench, starts: int, configs: int, version: str) -> None:
    static = "bench-dynos-static"
    static_id = bench.create_app(static)
    _, seconds = bench.push(static, {"Procfile": "web: python3 -m http.server $PORT\n"})
    print(f"(Procfile-only app `web: python3 -m http.server $PORT` pushed in {seconds:.2f} s)")
    start_latency(bench, static, static_id, starts)
    scale_ten(bench, static, static_id)

    echo = "bench-dynos-echo"
    echo_id = bench.create_app(echo)
    bench.push(echo, {"Procfile": "web: python3 echo.py\n", "echo.py": ECHO})
    config_set(bench, echo, echo_id, configs)
    bench.scale_to_zero(echo)

    push_to_answer(bench, version)


def _all(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="start-latency samples")
    parser.add_argument("--configs", type=int, default=5, help="config:set samples")
    parser.add_argument("--python", help="version for runtime.txt (default: 3.11.7)")
    args = parser.parse_args()
    run(args.starts, args.configs, args.python)


if __name__ == "__main__":
    main()
