"""`python -m kiku.router --workers N`: N processes on the same ports (SO_REUSEPORT), each
fed routes; a worker that dies is replaced; SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

from certkit import TestCA
from router import routerkit
from router.routerkit import Client, Dyno, FeedServer, LogReceiver, route, run
from router.test_feed_and_log import _free_port


def children(pid: int) -> list[int]:
    """The router workers under `pid` (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [p for p in found if b"spawn_main" in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def until(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@run
async def test_workers_share_the_ports_and_are_replaced_when_they_die() -> None:
    ca = TestCA()
    pem = ca.issue("*.kiku.test", "kiku.test")
    fd, cert_file = tempfile.mkstemp(suffix=".pem")
    with os.fdopen(fd, "w") as out:
        out.write(pem.cert + pem.key)
    d = await Dyno().start()
    feed = FeedServer()
    feed.routes = {"app.kiku.test": route("app", d.backend)}
    await feed.start()
    logplex = LogReceiver()
    logplex.follow()
    port, tls_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiku.router",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tls-port",
            str(tls_port),
            "--tls-cert",
            cert_file,
            "--routes-socket",
            feed.path,
            "--log-socket",
            logplex.path,
            "--workers",
            "2",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        await until(lambda: feed.connects >= 2)  # each worker reads the feed
        await asyncio.sleep(0.2)
        workers = children(proc.pid)
        assert len(workers) == 2
        for _ in range(20):  # new connections: the kernel spreads them over both
            c = await Client.connect(port)
            assert (await c.get(host="app.kiku.test")).status == 200
            c.close()
        context = ssl.create_default_context(cadata=ca.pem)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", tls_port, ssl=context, server_hostname="app.kiku.test"
        )
        r = await Client(reader, writer).get(host="app.kiku.test")
        assert r.status == 200
        writer.close()
        lines = await logplex.wait(21)
        assert len(lines) == 21 and lines[-1].endswith("protocol=https")

        os.kill(workers[0], signal.SIGKILL)
        await until(lambda: feed.connects >= 3)  # a new worker took its place
        assert len(children(proc.pid)) == 2 and workers[0] not in children(proc.pid)
        for _ in range(10):
            c = await Client.connect(port)
            assert (await c.get(host="app.kiku.test")).status == 200
            c.close()

        proc.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
        assert code == 0
        assert proc.stderr is not None
        assert b"exited with -9; starting another" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            for pid in children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
        await feed.close()
        await d.stop()
        logplex.close()
        os.unlink(cert_file)


def test_workers_do_not_join_another_routers_port() -> None:
    import socket

    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as another router's worker
    other.bind(("127.0.0.1", 0))
    other.listen()
    port = other.getsockname()[1]
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "kiku.router",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--routes-socket",
                "/nonexistent/routes.sock",
                "--workers",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        other.close()
    assert done.returncode == 2
    assert f"127.0.0.1:{port} is in use" in done.stderr


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _limit_descriptors(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@run
async def test_out_of_descriptors_the_router_waits_and_recovers() -> None:
    """More clients than a worker has descriptors for: it neither spins nor dies, and
    serves again once they leave. (The lane leaves the ones it cannot take in the backlog;
    libuv, in Python mode, closes them.)"""
    d = await Dyno().start()
    feed = FeedServer()
    feed.routes = {"app.localhost": route("app", d.backend)}
    await feed.start()
    port = _free_port()
    command = [sys.executable, "-m", "kiku.router", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--routes-socket", feed.path, "--workers", "1"]
    command += [] if routerkit.LANE else ["--no-lane"]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, preexec_fn=lambda: _limit_descriptors(64)
    )
    clients: list[Client] = []
    try:
        await until(lambda: feed.connects >= 1)
        probe = await Client.connect(port)
        assert (await probe.get()).status == 200
        probe.close()
        for _ in range(100):  # a request each, far more than 64 descriptors hold
            c = await Client.connect(port)
            c.send(b"GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
            clients.append(c)
        await asyncio.sleep(0.5)
        before = _cpu_seconds(proc.pid)
        await asyncio.sleep(1.0)
        assert _cpu_seconds(proc.pid) - before < 0.3  # waiting, not spinning
        assert proc.poll() is None
        for c in clients:
            c.close()
        clients.clear()
        # Once the router has let go (libuv, in Python mode, sheds clients at the limit):
        await until(lambda: len(os.listdir(f"/proc/{proc.pid}/fd")) < 40)
        late = await Client.connect(port)
        assert (await asyncio.wait_for(late.get(), 10)).status == 200
        late.close()
    finally:
        for c in clients:
            c.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        await feed.close()
        await d.stop()
