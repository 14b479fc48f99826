"""Deploys that run: the release phase in a real sandbox, then web dynos that answer."""

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kikuserver import KikuServer, serving, wait_for
from schemacheck import assert_valid_list

PASSWORD = "correct horse battery"
SERVER = """import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.environ['DYNO']} {os.environ.get('GREETING', '-')}".encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    with serving(tmp_path_factory.mktemp("dynos") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def token(server: KikuServer) -> str:
    return server.login("dynos@example.com", PASSWORD)


def dyno_address(server: KikuServer, app_id: str, name: str) -> tuple[str, int]:
    with sqlite3.connect(server.data_dir / "kiku.db") as db:
        row = db.execute(
            "SELECT address, port FROM dynos WHERE app_id = ? AND name = ?", (app_id, name)
        ).fetchone()
    return row[0], row[1]


def deploy(
    server: KikuServer, token: str, tmp_path: Path, name: str, procfile: str
) -> tuple[dict[str, Any], str]:
    files = {"Procfile": procfile, "hello.py": SERVER}
    app, pushed = server.deploy(token, name, files, tmp_path, config={"GREETING": "hello"})
    return app, pushed.output


def test_release_phase_then_web_dyno_answers(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    app, output = deploy(
        server,
        token,
        tmp_path,
        "runs",
        "web: python3 hello.py\nrelease: echo migrating as $DYNO; echo done\n",
    )
    assert "Release command declared" in output, output
    assert "Running release command..." in output
    assert "migrating as release." in output
    assert "Waiting for release.... done." in output
    with server.client(token) as api:
        dynos = wait_for(
            lambda: [d for d in api.get("/apps/runs/dynos").json() if d["state"] == "up"]
        )
        assert [d["name"] for d in dynos] == ["web.1"]
        assert_valid_list("dyno", dynos)
        assert_valid_list("formation", api.get("/apps/runs/formation").json())
        release = api.get("/apps/runs/releases/v3").json()
        assert release["status"] == "succeeded" and release["current"]
        assert "migrating" in api.get(release["output_stream_url"]).text
    address, port = dyno_address(server, app["id"], "web.1")
    assert httpx.get(f"http://{address}:{port}/", timeout=5).text == "web.1 hello"


def test_failing_release_command_keeps_the_current_release(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    _, output = deploy(
        server, token, tmp_path, "failing", "web: python3 hello.py\nrelease: exit 3\n"
    )
    assert "Waiting for release.... failed." in output
    assert "pre-receive hook declined" not in output  # the push itself lands, as on Heroku
    with server.client(token) as api:
        releases = api.get("/apps/failing/releases", headers={"Range": "version ..; order=desc"})
        latest = releases.json()[0]
        assert latest["status"] == "failed" and not latest["current"]
        time.sleep(0.5)
        assert api.get("/apps/failing/dynos").json() == []  # nothing released runs


def test_scale_and_restart(server: KikuServer, token: str, tmp_path: Path) -> None:
    deploy(server, token, tmp_path, "scaled", "web: python3 hello.py\nworker: sleep 1000\n")
    with server.client(token) as api:
        scaled = api.patch(
            "/apps/scaled/formation", json={"updates": [{"type": "worker", "quantity": "2"}]}
        )
        assert scaled.status_code == 200
        names = wait_for(
            lambda: (
                sorted(
                    d["name"] for d in api.get("/apps/scaled/dynos").json() if d["state"] == "up"
                )
                == ["web.1", "worker.1", "worker.2"]
            )
        )
        assert names
        before = {d["name"]: d["id"] for d in api.get("/apps/scaled/dynos").json()}
        assert api.delete("/apps/scaled/dynos/worker.1").status_code == 202
        wait_for(
            lambda: (
                {d["name"]: d["id"] for d in api.get("/apps/scaled/dynos").json()}.get("worker.1")
                not in (None, before["worker.1"])
            )
        )
        bad = api.patch("/apps/scaled/formation/web", json={"quantity": 2, "size": "hobby"})
        assert bad.status_code == 422 and "1 Hobby dyno" in bad.json()["message"]
        api.patch(
            "/apps/scaled/formation",
            json={"updates": [{"type": "worker", "quantity": 0}, {"type": "web", "quantity": 0}]},
        )
        wait_for(lambda: api.get("/apps/scaled/dynos").json() == [])


def test_run_attached_round_trips_stdin_and_exit_code(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    from kikuserver import kiku

    deploy(server, token, tmp_path, "oneoff", "web: python3 hello.py\n")
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "KIKU_API_URL": server.url,
        "KIKU_API_KEY": token,
    }
    done = kiku(
        "run",
        "-a",
        "oneoff",
        "echo hello $DYNO $GREETING; read x; echo got $x; exit 3",
        env=env,
        input="stdin-line\n",
    )
    assert done.returncode == 3, done.stderr
    assert "hello run." in done.stdout and "hello\n" not in done.stderr
    assert "got stdin-line" in done.stdout
    assert "Running echo hello" in done.stderr
    detached = kiku("run:detached", "-a", "oneoff", "sleep 0.2", env=env)
    assert detached.returncode == 0 and "run." in detached.stderr


def test_ps_exec_and_ps_copy_reach_inside_a_running_dyno(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    from kikuserver import kiku

    deploy(
        server, token, tmp_path, "entered", "web: echo inside > /app/note.txt; python3 hello.py\n"
    )
    with server.client(token) as api:
        wait_for(lambda: [d for d in api.get("/apps/entered/dynos").json() if d["state"] == "up"])
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "KIKU_API_URL": server.url,
        "KIKU_API_KEY": token,
    }
    done = kiku(
        "ps:exec",
        "-a",
        "entered",
        "-d",
        "web.1",
        "echo $DYNO $GREETING $(id -u); hostname",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["web.1", "hello", "10000", "web.1"]
    copied = kiku("ps:copy", "note.txt", "-a", "entered", "-o", str(tmp_path / "out.txt"), env=env)
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "out.txt").read_text() == "inside\n"
    missing = kiku("ps:copy", "nope.txt", "-a", "entered", "-o", str(tmp_path / "x"), env=env)
    assert missing.returncode == 1 and not (tmp_path / "x").exists()


def _read_until(fd: int, wanted: bytes, timeout: float = 30) -> bytes:
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {wanted!r} in {seen!r}")
        seen += os.read(fd, 4096)
    return seen


def test_attached_terminal_takes_the_size_and_its_changes(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    from websockets.sync.client import connect

    deploy_once(server, token, tmp_path, "resize")
    with server.client(token) as api:
        dyno = api.post(
            "/apps/resize/dynos",
            json={
                "command": "stty size; read x; stty size",
                "attach": True,
                "force_no_tty": False,
                "env": {"COLUMNS": "100", "LINES": "30", "TERM": "xterm"},
            },
        ).json()
    url = f"{server.url.replace('http', 'ws', 1)}/apps/resize/dynos/{dyno['name']}/attach"
    output = b""
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        while b"30 100" not in output:  # the size the client announced at creation
            output += ws.recv(timeout=30)  # type: ignore[operator]
        ws.send(json.dumps({"resize": {"rows": 40, "cols": 120}}))
        ws.send(b"go\r")
        while b"40 120" not in output:
            output += ws.recv(timeout=30)  # type: ignore[operator]
        last = [frame for frame in ws if isinstance(frame, str)]
    assert [json.loads(frame) for frame in last] == [{"exit_code": 0}]


def test_kiku_run_forwards_window_size_changes(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    import fcntl
    import struct
    import subprocess
    import sys
    import termios

    deploy_once(server, token, tmp_path, "resize")

    def set_size(fd: int, rows: int, cols: int) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    master, slave = os.openpty()
    set_size(master, 25, 90)
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "KIKU_API_URL": server.url,
        "KIKU_API_KEY": token,
        "TERM": "xterm",
    }

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiku.cli.main",
            "run",
            "-a",
            "resize",
            "stty size; read x; stty size",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    try:
        _read_until(master, b"25 90")
        set_size(master, 44, 132)  # the terminal is resized: kiku gets SIGWINCH
        time.sleep(0.5)
        os.write(master, b"go\r")
        _read_until(master, b"44 132")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def deploy_once(server: KikuServer, token: str, tmp_path: Path, name: str) -> None:
    """An app with a release, made by the first test that needs it."""
    with server.client(token) as api:
        if api.get(f"/apps/{name}").status_code == 200:
            return
    deploy(server, token, tmp_path, name, "web: sleep 1000\n")


def test_rendezvous_attach_as_herokus_cli_does(
    server: KikuServer, token: str, tmp_path: Path
) -> None:
    import socket
    import ssl
    from urllib.parse import urlsplit

    deploy(server, token, tmp_path, "rendezvous", "web: python3 hello.py\n")
    with server.client(token) as api:
        dyno = api.post(
            "/apps/rendezvous/dynos",
            json={
                "command": "read x; echo got $x; echo on $DYNO",
                "attach": True,
                "force_no_tty": True,
            },
        ).json()
    url = urlsplit(dyno["attach_url"])
    assert url.scheme == "rendezvous" and url.port == server.rendezvous_port
    context = ssl.create_default_context(cafile=str(server.data_dir / "tls" / "ca.pem"))
    with (
        socket.create_connection((url.hostname, url.port), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname=url.hostname) as tls,
    ):
        tls.sendall(url.path.lstrip("/").encode() + b"\r\n")
        assert tls.recv(1024) == b"rendezvous\r\n"  # the ack, discarded by the CLI
        tls.sendall(b"hello\n\x04")
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    assert received.decode() == f"got hello\non {dyno['name']}\n"
    bad = context.wrap_socket(
        socket.create_connection((url.hostname, url.port)), server_hostname=url.hostname
    )
    bad.sendall(b"not-a-secret\r\n")
    assert b"unknown" in bad.recv(1024)
    bad.close()
