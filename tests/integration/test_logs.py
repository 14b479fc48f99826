"""An app's log stream end to end: dyno output, dyno-manager and API events, `kiku logs`,
log sessions as the official CLI reads them (SSE, Last-Event-ID), and the history kept
across a restart of `kiku server`."""

import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kikuserver import KikuServer, kiku, serving, wait_for

PASSWORD = "correct horse battery"
WEB = """import http.server, os, sys
print("booted", os.environ["DYNO"], flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("hit", self.path, os.environ["DYNO"], flush=True)
        body = os.environ["DYNO"].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""
# A worker that says numbered lines, one long one, and an error on stderr, then idles.
WORKER = """import sys, time
for i in range(5):
    print("tick", i, flush=True)
print("x" * 25000, flush=True)
print("oops", file=sys.stderr, flush=True)
time.sleep(3600)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    with serving(tmp_path_factory.mktemp("logs") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def token(server: KikuServer) -> str:
    return server.login("logs@example.com", PASSWORD)


@pytest.fixture(scope="module")
def app(server: KikuServer, token: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    procfile = "web: python3 web.py\nworker: python3 worker.py\n"
    files = {"Procfile": procfile, "web.py": WEB, "worker.py": WORKER}
    _, pushed = server.deploy(
        token, "logged", files, tmp_path_factory.mktemp("git"), config={"GREETING": "secret-value"}
    )
    assert pushed.returncode == 0, pushed.output
    return "logged"


def history(server: KikuServer, token: str, app: str, **body: object) -> list[str]:
    with server.client(token) as api:
        session = api.post(f"/apps/{app}/log-sessions", json=body).json()
    response = httpx.get(session["logplex_url"], timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text.splitlines()


def messages(lines: list[str]) -> list[str]:
    """`app[web.1]: booted web.1` from `TIMESTAMP app[web.1]: booted web.1`."""
    return [line.split(" ", 1)[1] for line in lines]


def test_dyno_output_and_platform_events_reach_the_stream(
    server: KikuServer, token: str, app: str
) -> None:
    up = "heroku[web.1]: State changed from starting to up"
    wait_for(lambda: up in messages(history(server, token, app)))
    lines = history(server, token, app, lines=1500)
    said = messages(lines)
    assert "app[web.1]: booted web.1" in said
    assert "app[api]: Set GREETING config vars by user logs@example.com" in said
    assert any(m.startswith("app[api]: Deploy ") for m in said)
    assert "app[api]: Release v2 created by user logs@example.com" in said
    assert not any("secret-value" in line for line in lines)
    # RFC 3339 with microseconds, in UTC.
    stamp = lines[0].split(" ", 1)[0]
    assert len(stamp) == len("2026-11-28T23:59:59.123456+00:00") and stamp.endswith("+00:00")

    with server.client(token) as api:
        api.patch(f"/apps/{app}/formation/worker", json={"quantity": 1}).raise_for_status()
    wait_for(lambda: "app[worker.1]: oops" in messages(history(server, token, app)))
    worker = messages(history(server, token, app, dyno="worker.1", source="app"))
    ticks = [m for m in worker if "tick" in m]
    assert ticks == [f"app[worker.1]: tick {i}" for i in range(5)]
    # 25000 bytes: split into 10000-byte lines.
    long = [m for m in worker if m.startswith("app[worker.1]: xxx")]
    assert [len(m) - len("app[worker.1]: ") for m in long] == [10000, 10000, 5000]
    assert any(m.startswith("app[api]: Scaled to ") for m in messages(history(server, token, app)))
    only_heroku = messages(history(server, token, app, source="heroku"))
    assert only_heroku and all(m.startswith("heroku[") for m in only_heroku)


def test_kiku_logs_prints_and_filters(server: KikuServer, token: str, app: str) -> None:
    env = {**os.environ, "KIKU_API_URL": server.url, "KIKU_API_KEY": token}
    wait_for(lambda: "app[web.1]: booted web.1" in messages(history(server, token, app)))
    shown = kiku("logs", "-a", app, "-n", "1500", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "app[web.1]: booted web.1" in shown.stdout
    web = kiku("logs", "-a", app, "-n", "1500", "-d", "web", "-s", "app", env=env)
    assert web.returncode == 0, web.stderr
    assert web.stdout and all(" app[web." in line for line in web.stdout.splitlines())
    bad = kiku("logs", "-a", app, "-n", "5000", env=env)
    assert bad.returncode != 0
    assert "1500" in bad.stderr


def test_tail_streams_sse_and_resumes(server: KikuServer, token: str, app: str) -> None:
    """What Heroku's CLI does: EventSource on logplex_url, no Authorization, reconnect
    with Last-Event-ID."""
    with server.client(token) as api:
        session = api.post(f"/apps/{app}/log-sessions", json={"tail": True, "lines": 1}).json()
    url = session["logplex_url"]
    seen: list[str] = []
    ids: list[str] = []
    done = threading.Event()

    def read(last_id: str | None = None, until: str = "hit /second") -> None:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("id:"):
                    ids.append(line[3:].strip())
                if line.startswith("data:"):
                    seen.append(line[6:])
                    if until in line:
                        return

    reader = threading.Thread(target=lambda: (read(until="hit /first"), done.set()))
    reader.start()
    wait_for(lambda: ids or seen)
    router = f"http://127.0.0.1:{server.router_port}"
    host = {"Host": f"{app}.localhost"}
    wait_for(lambda: httpx.get(f"{router}/first", headers=host, timeout=30).status_code == 200)
    assert done.wait(30)
    reader.join()
    assert any("app[web.1]: hit /first web.1" in line for line in seen)
    # Lines written while nobody listened come on the reconnect, and nothing twice.
    httpx.get(f"{router}/second", headers=host, timeout=30)
    before = len(seen)
    read(ids[-1])
    resumed = seen[before:]
    assert any("hit /second" in line for line in resumed)
    assert not any("hit /first" in line for line in resumed)


def test_expired_or_forged_session_is_404(server: KikuServer, token: str, app: str) -> None:
    with server.client(token) as api:
        session = api.post(f"/apps/{app}/log-sessions", json={}).json()
    forged = session["logplex_url"][:-3] + "abc"
    assert httpx.get(forged, timeout=10).status_code == 404


def test_history_survives_a_restart(server: KikuServer, token: str, app: str) -> None:
    wait_for(lambda: "app[web.1]: booted web.1" in messages(history(server, token, app)))
    before = history(server, token, app, lines=1500)
    server.stop(keep_router=True)
    server.start()
    after = history(server, token, app, lines=1500)
    assert after[: len(before)] == before
    # Dynos kept running and their output keeps coming, without repeats.
    router = f"http://127.0.0.1:{server.router_port}"
    httpx.get(f"{router}/after-restart", headers={"Host": f"{app}.localhost"}, timeout=30)
    wait_for(lambda: any("hit /after-restart" in m for m in history(server, token, app)))
    lines = history(server, token, app, lines=1500)
    # (The worker's 25000 x's are two equal 10000-byte lines: leave them out.)
    repeated = [line for line, n in Counter(lines).items() if n > 1 and "xxxx" not in line]
    assert repeated == []


def test_logs_need_access(server: KikuServer, token: str, app: str, tmp_path: Path) -> None:
    other = server.login("stranger@example.com", PASSWORD)
    with server.client(other) as api:
        response = api.post(f"/apps/{app}/log-sessions", json={})
    assert response.status_code == 403


def test_router_lines_reach_the_stream(server: KikuServer, token: str, app: str) -> None:
    router = f"http://127.0.0.1:{server.router_port}"
    host = {"Host": f"{app}.localhost"}
    wait_for(lambda: httpx.get(f"{router}/routed", headers=host, timeout=30).status_code == 200)

    def routed() -> list[str]:
        said = messages(history(server, token, app, dyno="router"))
        return [m for m in said if 'path="/routed"' in m and "status=200" in m]

    line = wait_for(routed)[0]
    assert line.startswith('heroku[router]: at=info method=GET path="/routed" host=logged.')
    assert "dyno=web.1" in line and "protocol=http" in line


def test_a_tail_sees_lines_from_two_dynos(server: KikuServer, token: str, app: str) -> None:
    with server.client(token) as api:
        api.patch(f"/apps/{app}/formation/web", json={"quantity": 2}).raise_for_status()
        session = api.post(f"/apps/{app}/log-sessions", json={"tail": True, "lines": 0}).json()
    seen: set[str] = set()
    router = f"http://127.0.0.1:{server.router_port}"
    host = {"Host": f"{app}.localhost"}

    def read() -> None:
        headers = {"Accept": "text/event-stream"}
        with httpx.stream("GET", session["logplex_url"], headers=headers, timeout=60) as stream:
            for line in stream.iter_lines():
                for dyno in ("web.1", "web.2"):
                    if f"app[{dyno}]: hit /both {dyno}" in line:
                        seen.add(dyno)
                if len(seen) == 2:
                    return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # Round-robin over the up dynos: requests land on both once web.2 is up.
        wait_for(lambda: httpx.get(f"{router}/both", headers=host, timeout=30) and len(seen) == 2)
    finally:
        reader.join(60)
        with server.client(token) as api:
            api.patch(f"/apps/{app}/formation/web", json={"quantity": 1})
    assert seen == {"web.1", "web.2"}
