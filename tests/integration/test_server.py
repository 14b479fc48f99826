"""`kiku server` as a process: start, upgrade its store, stop cleanly, refuse a busy port."""

import signal
import socket
from pathlib import Path

import pytest

from kikuserver import KikuServer, kiku


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_starts_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    server = KikuServer(tmp_path / "data")
    server.start()
    try:
        response = server.client().get("/account")
        assert response.status_code == 401
        assert response.json()["id"] == "unauthorized"
        assert (tmp_path / "data" / "kiku.db").exists()
    finally:
        code = server.stop(sig)
    assert code == 0
    log = server.log.read_text()
    assert "kiku is up" in log and "kiku stopped" in log
    assert "Traceback" not in log


def test_restart_keeps_state_and_reruns_migrations(tmp_path: Path) -> None:
    server = KikuServer(tmp_path / "data")
    server.start()
    server.create_user("dev@example.com", "long enough password")
    assert server.stop() == 0
    server.start()
    try:
        again = kiku(
            "admin:create-user",
            "dev@example.com",
            "--password",
            "long enough password",
            "--data-dir",
            str(server.data_dir),
        )
        assert again.returncode != 0
        assert "already exists" in again.stderr
    finally:
        assert server.stop() == 0


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = kiku("server", "--data-dir", str(tmp_path / "data"), "--api-port", str(port))
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr
    assert "--api-port" in done.stderr
    assert "Traceback" not in done.stderr
