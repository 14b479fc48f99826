"""The router's log transport to logplex: unix datagrams, batched for a few ms, dropped
(and counted) while logplex is away."""

from __future__ import annotations

import asyncio
import os
import re
import socket

from kiku.router.logsink import DatagramLog
from router.routerkit import Dyno, LogReceiver, route, run, stack, teardown

LINE = re.compile(r"^(\S+) (\d+\.\d{6}) (at=.*)$")


@run
async def test_lines_close_in_time_go_in_one_datagram() -> None:
    logplex = LogReceiver()
    log = DatagramLog(logplex.path, clock=lambda: 1764374399.5)
    log("app-1 at=info method=GET status=200")
    log("- at=info method=GET status=404")
    assert logplex.receive() == []  # not before the others had a chance to join
    lines = await logplex.wait(2)
    assert len(logplex.datagrams) == 1
    assert lines == [
        "app-1 1764374399.500000 at=info method=GET status=200",
        "- 1764374399.500000 at=info method=GET status=404",
    ]
    assert (log.sent, log.dropped) == (2, 0)
    log.close()
    logplex.close()


@run
async def test_a_full_batch_goes_at_once() -> None:
    logplex = LogReceiver()
    log = DatagramLog(logplex.path, max_datagram=1000)
    message = "at=info " + "x" * 300
    for _ in range(10):
        log(f"app {message}")
    assert len(logplex.receive()) >= 6  # sent at once, without waiting
    await logplex.wait(10)
    assert all(len(d) <= 1000 for d in logplex.datagrams)
    assert len(logplex.receive()) == 10
    log.close()
    logplex.close()


@run
async def test_missing_refused_or_full_socket_drops_and_counts_then_recovers() -> None:
    notes: list[str] = []
    logplex = LogReceiver()
    path = logplex.path
    logplex.close()  # ENOENT
    log = DatagramLog(path, warn=notes.append)
    log("app at=info one")
    await asyncio.sleep(log.flush_delay * 4)
    assert (log.sent, log.dropped) == (0, 1)
    assert notes and "lines dropped" in notes[0]

    os.makedirs(os.path.dirname(path))
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(path)
    dead.close()  # the file is there, nobody reads: ECONNREFUSED
    log("app at=info two")
    log.flush()
    assert log.dropped == 2
    os.unlink(path)

    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)  # logplex is back: the next flush reaches it
    receiver.setblocking(False)
    log("app at=info three")
    log.flush()
    assert receiver.recv(65536).decode().endswith(" at=info three\n")
    sent = 0
    for _ in range(100_000):  # nobody reads: the queue fills (EAGAIN), nothing raises
        log("app at=info " + "y" * 200)
        log.flush()
        if log.dropped > 2:
            break
        sent += 1
    assert log.dropped > 2 and sent > 0
    log.close()
    receiver.close()
    os.unlink(path)
    os.rmdir(os.path.dirname(path))


@run
async def test_a_router_sends_its_request_lines() -> None:
    logplex = LogReceiver()
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    s.router.log = DatagramLog(logplex.path)
    c = await s.client()
    assert (await c.get("/p")).status == 200
    assert (await c.get("/nope", host="other.localhost")).status == 404
    lines = await logplex.wait(2)
    app_id, _at, message = LINE.match(lines[0]).groups()  # type: ignore[union-attr]
    assert app_id == "id-app" and message.startswith('at=info method=GET path="/p" ')
    assert lines[1].startswith("- ") and "status=404" in lines[1]
    c.close()
    await teardown(s, d)
    logplex.close()
