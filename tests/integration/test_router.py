"""Apps served through kiku's router, which outlives the control plane."""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kikuserver import KikuServer, serving, wait_for

PASSWORD = "correct horse battery"
HELLO = """import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.environ['DYNO']} {os.environ.get('GREETING', '-')}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    with serving(tmp_path_factory.mktemp("router") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def token(server: KikuServer) -> str:
    return server.login("router@example.com", PASSWORD)


def get(server: KikuServer, host: str, path: str = "/") -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{server.router_port}{path}", headers={"Host": host}, timeout=90
    )


def deploy(server: KikuServer, token: str, tmp_path: Path, name: str) -> None:
    files = {"Procfile": "web: python3 hello.py\n", "hello.py": HELLO}
    _, pushed = server.deploy(token, name, files, tmp_path, config={"GREETING": "hello"})
    assert pushed.returncode == 0, pushed.output


def answers(server: KikuServer, host: str, text: str) -> bool:
    try:
        response = get(server, host)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text == text


def test_app_is_served_by_host(server: KikuServer, token: str, tmp_path: Path) -> None:
    deploy(server, token, tmp_path, "served")
    wait_for(lambda: answers(server, "served.localhost", "web.1 hello"))
    response = get(server, f"served.localhost:{server.router_port}")
    assert response.text == "web.1 hello"
    assert len(response.headers["X-Request-Id"]) >= 20
    missing = get(server, "nope.localhost")
    assert missing.status_code == 404
    with server.client(token) as api:
        api.patch("/apps/served", json={"maintenance": True})
        wait_for(lambda: get(server, "served.localhost").status_code == 503)
        api.patch("/apps/served", json={"maintenance": False})
        wait_for(lambda: answers(server, "served.localhost", "web.1 hello"))


def test_config_change_loses_no_request(server: KikuServer, token: str, tmp_path: Path) -> None:
    deploy(server, token, tmp_path, "steady")
    wait_for(lambda: answers(server, "steady.localhost", "web.1 hello"))
    failures: list[str] = []
    stop = threading.Event()
    served = [0]

    def load() -> None:
        with httpx.Client(timeout=90) as client:
            while not stop.is_set():
                try:
                    response = client.get(
                        f"http://127.0.0.1:{server.router_port}/",
                        headers={"Host": "steady.localhost"},
                    )
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:80]}")
                    served[0] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.01)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(0.3)
        with server.client(token) as api:
            api.patch("/apps/steady/config-vars", json={"GREETING": "again"})
        wait_for(lambda: answers(server, "steady.localhost", "web.1 again"))
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join()
    assert failures == [], failures[:5]
    assert served[0] > 20


def test_router_outlives_a_control_plane_restart(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    deploy(server, token, tmp_path, "durable")
    wait_for(lambda: answers(server, "durable.localhost", "web.1 hello"))
    record = json.loads((server.data_dir / "run" / "router.json").read_text())
    assert server.stop(keep_router=True) == 0
    assert answers(server, "durable.localhost", "web.1 hello")  # control plane away
    server.start()
    assert answers(server, "durable.localhost", "web.1 hello")
    time.sleep(1.5)
    assert json.loads((server.data_dir / "run" / "router.json").read_text()) == record
