"""H codes: maintenance, no dynos, crashed, boot wait, timeouts, refused, bad backends,
smuggling and oversized headers."""

from __future__ import annotations

import asyncio
import socket

from router.routerkit import Dyno, route, run, stack, teardown


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@run
async def test_maintenance_is_503_h80() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend, maintenance=True)})
    c = await s.client()
    r = await c.get()
    assert r.status == 503 and b"Maintenance" in r.body and not d.seen
    line = (await s.wait_log())[0]
    assert 'at=info code=H80 desc="Maintenance mode"' in line
    assert "dyno= connect= service= status=503" in line
    c.close()
    await teardown(s, d)


@run
async def test_no_web_dynos_h14_and_crashed_h10() -> None:
    s = await stack(
        routes={
            "none.localhost": route("none", state="none"),
            "dead.localhost": route("dead", state="crashed"),
        }
    )
    c = await s.client()
    assert (await c.get(host="none.localhost")).status == 503
    assert (await c.get(host="dead.localhost")).status == 503
    lines = await s.wait_log(2)
    assert 'code=H14 desc="No web dynos running"' in lines[0]
    assert lines[0].startswith("id-none at=error ")
    assert 'code=H10 desc="App crashed"' in lines[1]
    c.close()
    await teardown(s)


@run
async def test_starting_app_holds_the_request_until_up() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", state="starting")})
    c = await s.client()
    pending = asyncio.ensure_future(c.get())
    await asyncio.sleep(0.3)
    assert not pending.done()
    await s.routes({"app.localhost": route("app", d.backend)})
    r = await pending
    assert r.status == 200 and len(d.seen) == 1
    c.close()
    await teardown(s, d)


@run
async def test_boot_timeout_h20() -> None:
    s = await stack(routes={"app.localhost": route("app", state="starting")})
    c = await s.client()
    r = await c.get()
    assert r.status == 503
    assert 'code=H20 desc="App boot timeout"' in (await s.wait_log())[0]
    c.close()
    await teardown(s)


@run
async def test_backend_that_never_answers_h12() -> None:
    async def silent(seen, r, w):  # type: ignore[no-untyped-def]
        await asyncio.sleep(5)
        return False

    d = await Dyno(handler=silent).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    r = await c.get()
    assert r.status == 503 and b"Application error" in r.body
    line = (await s.wait_log())[0]
    assert 'at=error code=H12 desc="Request timeout"' in line
    assert "dyno=web.1 " in line and "status=503" in line
    c.close()
    await teardown(s, d)


@run
async def test_backend_closing_without_response_h13() -> None:
    async def rude(seen, r, w):  # type: ignore[no-untyped-def]
        return False

    d = await Dyno(handler=rude).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    assert (await c.get()).status == 503
    assert "code=H13" in (await s.wait_log())[0]
    c.close()
    await teardown(s, d)


@run
async def test_backend_closing_mid_response_closes_client() -> None:
    async def half(seen, r, w):  # type: ignore[no-untyped-def]
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        return False

    d = await Dyno(handler=half).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    c.send(b"GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
    data = await asyncio.wait_for(c.reader.read(), 2)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"partial")
    assert "code=H18" in (await s.wait_log())[0]
    await teardown(s, d)


@run
async def test_garbage_from_backend_h17() -> None:
    async def garbage(seen, r, w):  # type: ignore[no-untyped-def]
        w.write(b"NOT HTTP AT ALL\r\n\r\n")
        return False

    d = await Dyno(handler=garbage).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    assert (await c.get()).status == 503
    assert "code=H17" in (await s.wait_log())[0]
    c.close()
    await teardown(s, d)


@run
async def test_refused_backend_retries_the_other_then_h21() -> None:
    d = await Dyno("web.2").start()
    dead = ("web.1", free_port())
    s = await stack(routes={"app.localhost": route("app", dead, d.backend)})
    c = await s.client()
    for _ in range(2):
        assert (await c.get()).status == 200
    await s.routes({"app.localhost": route("app", dead)})
    r = await c.get()
    assert r.status == 503
    lines = await s.wait_log(3)
    assert 'code=H21 desc="Backend connection refused"' in lines[2]
    c.close()
    await teardown(s, d)


@run
async def test_idle_streaming_response_h15() -> None:
    async def stall(seen, r, w):  # type: ignore[no-untyped-def]
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        await w.drain()
        await asyncio.sleep(3)
        return False

    d = await Dyno(handler=stall).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    c.send(b"GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
    assert (await asyncio.wait_for(c.reader.read(), 2)).endswith(b"1\r\na\r\n")
    assert 'code=H15 desc="Idle connection"' in (await s.wait_log())[0]
    await teardown(s, d)


@run
async def test_smuggling_attempts_rejected() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    attempts = [
        b"POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
        b"abcde",
        b"GET / HTTP/1.1\r\nHost: app.localhost\r\nHost: other.localhost\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
    ]
    for attempt in attempts:
        c = await s.client()
        c.send(attempt)
        r = await c.response()
        assert r.status == 400, attempt
        assert await c.closed()
    assert not d.seen
    await teardown(s, d)


@run
async def test_oversized_headers_rejected() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    for extra in [
        "X-Big: " + "a" * 9000 + "\r\n",
        "X-" + "n" * 1001 + ": v\r\n",
        "".join(f"X-{i}: v\r\n" for i in range(1001)),
    ]:
        c = await s.client()
        assert (await c.get(headers=extra)).status == 400
        c.close()
    c = await s.client()
    assert (await c.get("/" + "p" * 9000)).status == 400
    assert not d.seen
    c.close()
    await teardown(s, d)


@run
async def test_expect_other_than_continue_417() -> None:
    s = await stack(routes={})
    c = await s.client()
    assert (await c.get(headers="Expect: magic\r\n")).status == 417
    c.close()
    await teardown(s)


@run
async def test_client_gone_mid_request_h27() -> None:
    async def slow(seen, r, w):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.3)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return True

    d = await Dyno(handler=slow).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    c.send(b"GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
    await asyncio.sleep(0.1)
    c.close()
    line = (await s.wait_log())[0]
    assert 'sock=client at=warning code=H27 desc="Client Request Interrupted"' in line
    assert "status=499" in line
    await teardown(s, d)
