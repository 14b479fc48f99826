"""Runtime metrics and `kiku metrics` on a real kiku: a pushed app served by the router,
log-runtime-metrics lines read from the dyno's cgroups, router traffic in the metrics, kept
across a restart of `kiku server`, and none for free dynos. Samples come every second here
(KIKU_RUNTIME_METRICS_INTERVAL); the timing itself is tested with a fake clock in tests/logs."""

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kikuserver import KikuServer, kiku, serving, wait_for

PASSWORD = "correct horse battery"
WEB = """import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 404 if self.path == "/missing" else 200
        body = os.environ["DYNO"].encode()
        self.send_response(status); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""
SAMPLE = re.compile(
    r"^\S+ heroku\[web\.1\]: source=web\.1 dyno=heroku\.\d+\.[0-9a-f-]{36} "
    r"sample#(load_avg_1m=\d+\.\d\d|memory_total=\d+\.\d\dMB) "
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    data = tmp_path_factory.mktemp("metrics") / "data"
    with serving(data, env={"KIKU_RUNTIME_METRICS_INTERVAL": "1"}) as server:
        yield server


@pytest.fixture(scope="module")
def token(server: KikuServer) -> str:
    return server.login("metrics@example.com", PASSWORD)


@pytest.fixture(scope="module")
def app(server: KikuServer, token: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    files = {"Procfile": "web: python3 web.py\n", "web.py": WEB}
    _, pushed = server.deploy(token, "measured", files, tmp_path_factory.mktemp("git"))
    assert pushed.returncode == 0, pushed.output
    wait_for(lambda: get(server, "/").status_code == 200, timeout=90)
    return "measured"


def get(server: KikuServer, path: str) -> httpx.Response:
    try:
        return httpx.get(
            f"http://127.0.0.1:{server.router_port}{path}",
            headers={"Host": "measured.localhost"},
            timeout=30,
        )
    except httpx.HTTPError:
        return httpx.Response(599)


def heroku_lines(server: KikuServer, token: str, app: str) -> list[str]:
    with server.client(token) as api:
        session = api.post(
            f"/apps/{app}/log-sessions", json={"lines": 1500, "source": "heroku", "dyno": "web.1"}
        ).json()
    return httpx.get(session["logplex_url"], timeout=30).text.splitlines()


def metrics(server: KikuServer, token: str, app: str, **params: str) -> httpx.Response:
    with server.client(token) as api:
        return api.get(f"/apps/{app}/metrics", params=params)


def web_summary(server: KikuServer, token: str, app: str) -> dict[str, Any] | None:
    body = metrics(server, token, app, process_type="web").json()
    found: dict[str, Any] = body["process_types"][0]["summary"]
    return found


def test_log_runtime_metrics_lines_come_once_enabled(
    server: KikuServer, token: str, app: str
) -> None:
    assert not [line for line in heroku_lines(server, token, app) if SAMPLE.match(line)]
    with server.client(token) as api:
        enabled = api.patch(f"/apps/{app}/features/log-runtime-metrics", json={"enabled": True})
        assert enabled.json()["enabled"] is True

    def samples() -> list[str]:
        found = [line for line in heroku_lines(server, token, app) if SAMPLE.match(line)]
        return found if len(found) >= 4 else []

    found = wait_for(samples, timeout=30)
    load = next(line for line in found if "load_avg_1m" in line)
    assert re.search(r"sample#load_avg_5m=\d+\.\d\d sample#load_avg_15m=\d+\.\d\d$", load)
    memory = next(line for line in found if "memory_total" in line)
    rss = float(re.findall(r"sample#memory_rss=(\d+\.\d\d)MB", memory)[0])
    assert 1 < rss < 512  # a Python web server, read from the dyno's memory cgroup
    assert re.search(r"sample#memory_pgpgin=\d+pages sample#memory_pgpgout=\d+pages", memory)
    assert memory.endswith("sample#memory_quota=512.00MB")  # standard-1x

    with server.client(token) as api:
        api.patch(f"/apps/{app}/features/log-runtime-metrics", json={"enabled": False})


def test_router_traffic_and_memory_show_in_metrics(
    server: KikuServer, token: str, app: str, tmp_path: Path
) -> None:
    for _ in range(20):
        assert get(server, "/").status_code == 200
    assert get(server, "/missing").status_code == 404

    def counted() -> dict[str, Any] | None:
        summary = web_summary(server, token, app)
        full = summary and summary["requests"] >= 21 and summary["memory_mb"]
        return summary if full else None

    summary = wait_for(counted, timeout=30)
    assert summary["status"]["2xx"] >= 20 and summary["status"]["4xx"] == 1
    assert summary["response_time_ms"]["p50"] is not None
    assert summary["memory_mb"]["quota"] == 512.0
    assert 1 < summary["memory_mb"]["rss"] < 512

    env = {**os.environ, "HOME": str(tmp_path), "KIKU_API_URL": server.url, "KIKU_API_KEY": token}
    shown = kiku("metrics", "-a", app, "--minutes", "30", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Metrics (last 30 minutes)" in shown.stdout
    web = next(line for line in shown.stdout.splitlines() if line.startswith("web "))
    assert "/512 MB" in web

    # A restart of the control plane keeps them (written to the data dir when it stops).
    requests = summary["requests"]
    assert server.stop() == 0
    server.start()
    again = web_summary(server, token, app)
    assert again is not None and again["requests"] >= requests


def test_free_dynos_get_no_metrics(server: KikuServer, token: str, app: str) -> None:
    with server.client(token) as api:
        resized = api.patch(f"/apps/{app}/formation/web", json={"size": "free"})
        assert resized.status_code == 200, resized.text
        refused = metrics(server, token, app)
        assert refused.status_code == 422
        assert refused.json()["message"] == (
            "Metrics are not available for free dynos; scale to hobby or larger with "
            "kiku ps:type hobby"
        )
        api.patch(f"/apps/{app}/formation/web", json={"size": "hobby"})
        assert metrics(server, token, app).status_code == 200
