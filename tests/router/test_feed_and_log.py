"""The route feed (keep the last table, reconnect), the log line, the process entry."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

from router.routerkit import (
    Client,
    Dyno,
    FeedServer,
    LogReceiver,
    route,
    run,
    stack,
    teardown,
)

LINE = re.compile(
    r'^id-app at=info method=GET path="/p\?q=1" host=app\.localhost '
    r'request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms '
    r"service=\d+ms status=200 bytes=\d+ protocol=http$"
)


@run
async def test_log_line_format() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    r = await c.get("/p?q=1", host="app.localhost:80")
    line = (await s.wait_log())[0]
    assert LINE.match(line), line
    assert int(re.search(r"bytes=(\d+)", line).group(1)) > len(r.body)  # type: ignore[union-attr]
    c.close()
    await teardown(s, d)


@run
async def test_feed_loss_keeps_table_and_reconnect_replaces_it() -> None:
    d1, d2 = await Dyno("web.1").start(), await Dyno("web.1").start()
    s = await stack(routes={"app.localhost": route("app", d1.backend)})
    await s.feed.stop()  # the control plane restarts
    await asyncio.sleep(0.2)
    c = await s.client()
    assert (await c.get()).status == 200 and len(d1.seen) == 1
    s.feed.routes = {"app.localhost": route("app", d2.backend)}
    before = s.router.table.version
    await s.feed.start()
    for _ in range(400):
        if s.router.table.version > before:
            break
        await asyncio.sleep(0.01)
    assert s.feed.connects == 2
    assert (await c.get()).status == 200 and len(d2.seen) == 1
    c.close()
    await teardown(s, d1, d2)


@run
async def test_python_m_kiku_router_serves_and_exits_0_on_sigterm() -> None:
    d = await Dyno().start()
    feed = FeedServer()
    feed.routes = {"app.localhost": route("app", d.backend)}
    await feed.start()
    logplex = LogReceiver()
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiku.router",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--routes-socket",
            feed.path,
            "--log-socket",
            logplex.path,
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        for _ in range(200):
            if feed.connects:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        c = await Client.connect(port)
        assert (await c.get()).status == 200
        c.close()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
        assert code == 0
        assert proc.stdout is not None
        assert proc.stdout.read() == b""  # request lines go to logplex only
        (line,) = await logplex.wait()
        assert re.match(r"^id-app \d{10}\.\d{6} at=info method=GET path=\"/\" ", line), line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await feed.close()
        await d.stop()
        logplex.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@run
async def test_stop_finishes_in_flight_requests() -> None:
    async def slow(seen, r, w):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.3)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
        return True

    d = await Dyno(handler=slow).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    pending = asyncio.ensure_future(c.get())
    await asyncio.sleep(0.1)
    await s.router.stop(grace=2)
    r = await pending
    assert r.body == b"done" and r.header("Connection") is None
    assert await c.closed()
    await s.feed.close()
    await d.stop()
