"""Traffic through a real kiku's router: custom domains, HTTPS, and a load loop at 100
requests/s counting failures while the app is redeployed, reconfigured and the control
plane restarted (with and without preboot)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from certkit import TestCA
from gitpush import GitRepo
from kikuserver import KikuServer, serving, wait_for

PASSWORD = "correct horse battery"
APP = """import http.server, os
VERSION = {version!r}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"{{VERSION}} {{os.environ.get('GREETING', '-')}}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    with serving(tmp_path_factory.mktemp("traffic") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def token(server: KikuServer) -> str:
    return server.login("traffic@example.com", PASSWORD)


class App:
    def __init__(self, server: KikuServer, token: str, root: Path, name: str) -> None:
        self.server, self.token, self.name = server, token, name
        self.host = f"{name}.localhost"
        self.repo = GitRepo(root / name, home=root / "home")
        with server.client(token) as api:
            assert api.post("/apps", json={"name": name}).status_code == 201
            api.patch(f"/apps/{name}/config-vars", json={"GREETING": "hello"})

    def push(self, version: str) -> None:
        self.repo.write(
            {"Procfile": "web: python3 hello.py\n", "hello.py": APP.format(version=version)}
        )
        self.repo.commit(version)
        done = self.repo.push(f"{self.server.url}/{self.name}.git", self.token)
        assert done.returncode == 0, done.output

    def get(self, path: str = "/", host: str | None = None) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.server.router_port}{path}",
            headers={"Host": host or self.host},
            timeout=90,
        )

    def says(self, text: str, host: str | None = None) -> bool:
        try:
            response = self.get(host=host)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text == text

    def api(self) -> httpx.Client:
        return self.server.client(self.token)


class Load:
    """Requests at a steady `rate` per second from a pool of threads (a held request does
    not slow the rate), counting every answer that is not a 200 and every error."""

    def __init__(self, app: App, rate: int = 100) -> None:
        self.app, self.rate = app, rate
        self.failures: list[str] = []
        self.bodies: list[str] = []
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=64)
        self._client = httpx.Client(timeout=90, limits=httpx.Limits(max_connections=64))
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._client.close()

    def _run(self) -> None:
        start, n = time.monotonic(), 0
        while not self._stop.is_set():
            self._pool.submit(self._one)
            n += 1
            delay = start + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _one(self) -> None:
        url = f"http://127.0.0.1:{self.app.server.router_port}/"
        t0 = time.monotonic()
        try:
            response = self._client.get(url, headers={"Host": self.app.host})
        except httpx.HTTPError as exc:
            self.failures.append(repr(exc))
            return
        self.latencies.append(time.monotonic() - t0)
        if response.status_code != 200:
            self.failures.append(f"{response.status_code} {response.text[:80]}")
        else:
            self.bodies.append(response.text)

    @property
    def sent(self) -> int:
        return len(self.latencies) + len(self.failures)


def settle(seconds: float = 1.0) -> None:
    time.sleep(seconds)


def test_custom_domains_and_https(server: KikuServer, token: str, tmp_path: Path) -> None:
    app = App(server, token, tmp_path, "shop")
    app.push("v1")
    wait_for(lambda: app.says("v1 hello"))
    with app.api() as api:
        assert api.post("/apps/shop/domains", json={"hostname": "www.shop.test"}).status_code == 201
        wait_for(lambda: app.says("v1 hello", host="www.shop.test"))
        assert app.get(host="other.shop.test").status_code == 404

        # kiku's own certificate on the HTTPS port, from its CA
        context = ssl.create_default_context(cafile=str(server.data_dir / "tls" / "ca.pem"))
        context.check_hostname = False  # OpenSSL matches no wildcard on one label (*.localhost)
        with httpx.Client(verify=context, timeout=30) as client:
            response = client.get(
                f"https://127.0.0.1:{server.router_tls_port}/", headers={"Host": "shop.localhost"}
            )
        assert response.status_code == 200 and response.text == "v1 hello"

        # the user's certificate for the custom domain, chosen by SNI
        ca = TestCA()
        pem = ca.issue("www.shop.test")
        made = api.post(
            "/apps/shop/sni-endpoints",
            json={"certificate_chain": pem.cert, "private_key": pem.key},
        )
        assert made.status_code == 201, made.text
        sni = server.data_dir / "tls" / "sni"
        files = wait_for(lambda: list(sni.glob("*.pem")))
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        users = ssl.create_default_context(cadata=ca.pem)  # hostname checked: www.shop.test
        wait_for(lambda: _https_get(server.router_tls_port, "www.shop.test", users))


def _https_get(port: int, name: str, context: ssl.SSLContext) -> bool:
    """GET / over TLS with SNI `name` to the router on 127.0.0.1 (no DNS for test names)."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname=name) as tls,
        ):
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    except (OSError, ssl.SSLError):
        return False
    return data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"v1 hello")


@pytest.mark.parametrize("preboot", [False, True], ids=["held", "preboot"])
def test_deploy_and_config_set_lose_no_request(
    server: KikuServer, token: str, tmp_path: Path, preboot: bool
) -> None:
    name = "preboot" if preboot else "held"
    app = App(server, token, tmp_path, name)
    if preboot:
        with app.api() as api:
            on = api.patch(f"/apps/{name}/features/preboot", json={"enabled": True})
            assert on.status_code == 200
    app.push("v1")
    wait_for(lambda: app.says("v1 hello"))
    with Load(app) as load:
        settle()
        app.push("v2")
        wait_for(lambda: "v2 hello" in load.bodies[-5:])
        settle()
        with app.api() as api:
            api.patch(f"/apps/{name}/config-vars", json={"GREETING": "again"})
        wait_for(lambda: "v2 again" in load.bodies[-5:])
        settle()
    assert load.failures == [], load.failures[:5]
    assert load.sent > 300
    slowest = max(load.latencies)
    print(f"{name}: {load.sent} requests, slowest {slowest * 1000:.0f} ms")
    if preboot:
        assert slowest < 2.0  # never held for a boot


def test_control_plane_restart_loses_no_request(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    app = App(server, token, tmp_path, "steadfast")
    app.push("v1")
    wait_for(lambda: app.says("v1 hello"))
    with Load(app) as load:
        settle()
        assert server.stop(keep_router=True) == 0
        settle()
        server.start()
        settle()
    assert load.failures == [], load.failures[:5]
    assert load.sent > 200
