"""Keep-alive, bodies streamed both ways, HEAD, Expect, WebSocket."""

from __future__ import annotations

import asyncio

from router.routerkit import Dyno, read_body, read_head, route, run, stack, teardown


@run
async def test_keep_alive_reuses_both_connections() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    r1 = await c.get("/1")
    r2 = await c.get("/2")
    assert (r1.status, r2.status) == (200, 200)
    assert d.connections == 1 and [x.conn for x in d.seen] == [1, 1]
    c.close()
    await teardown(s, d)


@run
async def test_http10_closes_unless_keep_alive() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    c.send(b"GET / HTTP/1.0\r\nHost: app.localhost\r\n\r\n")
    r = await c.response()
    assert r.status == 200 and r.header("Connection") == "close"
    assert await c.closed()
    await teardown(s, d)


@run
async def test_chunked_request_and_response_stream() -> None:
    release = asyncio.Event()

    async def handler(seen, _r, w):  # type: ignore[no-untyped-def]
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await w.drain()
        await release.wait()
        w.write(b"6\r\nsecond\r\n0\r\n\r\n")
        return True

    d = await Dyno(handler=handler).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    c.send(
        b"POST /up HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n"
    )
    await asyncio.sleep(0.05)
    c.send(b"4\r\ndefg\r\n0\r\n\r\n")
    head = await read_head(c.reader)
    assert head is not None and head[0].startswith("HTTP/1.1 200")
    assert ("Transfer-Encoding", "chunked") in head[1]
    assert await c.reader.readuntil(b"first\r\n") == b"5\r\nfirst\r\n"  # streamed, not buffered
    release.set()
    assert await c.reader.readuntil(b"0\r\n\r\n") == b"6\r\nsecond\r\n0\r\n\r\n"
    assert d.seen[0].body == b"abcdefg"
    assert d.seen[0].header("Transfer-Encoding") == "chunked"
    r = await c.get()  # the connection is still good
    assert r.status == 200
    c.close()
    await teardown(s, d)


@run
async def test_content_length_body_forwarded() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    body = b"x" * 200_000
    c.send(b"PUT /b HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: %d\r\n\r\n" % len(body))
    c.send(body)
    r = await c.response()
    assert r.status == 200 and d.seen[0].body == body
    c.close()
    await teardown(s, d)


@run
async def test_head_has_no_body_and_connection_reused() -> None:
    async def handler(seen, _r, w):  # type: ignore[no-untyped-def]
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        if seen.method != "HEAD":
            w.write(b"hello")
        return True

    d = await Dyno(handler=handler).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    r = await c.get(method="HEAD")
    assert r.status == 200 and r.header("Content-Length") == "5"
    r = await c.get()
    assert r.body == b"hello"
    assert d.connections == 1
    c.close()
    await teardown(s, d)


@run
async def test_expect_100_continue_passed_through() -> None:
    async def handler(seen, r, w):  # type: ignore[no-untyped-def]
        w.write(
            b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%b" % (len(seen.body), seen.body)
        )
        return True

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        assert head is not None
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await read_body(reader, head[1])
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    s = await stack(routes={"app.localhost": route("app", ("web.1", port))})
    c = await s.client()
    c.send(
        b"POST / HTTP/1.1\r\nHost: app.localhost\r\nExpect: 100-continue\r\n"
        b"Content-Length: 4\r\n\r\n"
    )
    interim = await read_head(c.reader)
    assert interim is not None and interim[0] == "HTTP/1.1 100 Continue"
    c.send(b"data")
    r = await c.response()
    assert r.status == 201 and r.body == b"data"
    c.close()
    await teardown(s)
    server.close()
    await server.wait_closed()


@run
async def test_websocket_upgrade_then_bytes_spliced() -> None:
    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        assert head is not None
        names = {k.lower(): v for k, v in head[1]}
        assert names["upgrade"] == "websocket"
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: x\r\n\r\n"
        )
        while data := await reader.read(1024):
            writer.write(b"echo:" + data)
        writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    s = await stack(routes={"app.localhost": route("app", ("web.1", port))})
    c = await s.client()
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: app.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await read_head(c.reader)
    assert head is not None and head[0].startswith("HTTP/1.1 101")
    c.send(b"ping")
    assert await c.reader.readexactly(9) == b"echo:ping"
    c.send(b"again")
    assert await c.reader.readexactly(10) == b"echo:again"
    lines = await s.wait_log(1)
    assert "status=101" in lines[0]
    c.close()
    await teardown(s)
    server.close()
    await server.wait_closed()


@run
async def test_pipelined_requests_answered_in_order() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    c.send(
        b"GET /a HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
    )
    r1, r2 = await c.response(), await c.response()
    assert (r1.json()["path"], r2.json()["path"]) == ("/a", "/b")
    c.close()
    await teardown(s, d)


@run
async def test_large_responses_reach_a_slow_reader_whole() -> None:
    """A dyno that writes faster than the client reads: the router holds the dyno back
    (back-pressure) rather than buffering without bound, and every byte arrives in order,
    with a Content-Length body and with a chunked one (re-chunked by the router)."""
    size = 6 * 1024 * 1024
    payload = bytes(i % 251 for i in range(size))

    async def handler(seen, _r, w):  # type: ignore[no-untyped-def]
        if seen.path == "/chunked":
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for at in range(0, size, 100_000):
                piece = payload[at : at + 100_000]
                w.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                await w.drain()
            w.write(b"0\r\n\r\n")
        else:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            w.write(payload)
        await w.drain()
        return True

    d = await Dyno(handler=handler).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    for path in ("/length", "/chunked"):
        c.send(f"GET {path} HTTP/1.1\r\nHost: app.localhost\r\n\r\n".encode())
        head = await read_head(c.reader)
        assert head is not None and head[0].startswith("HTTP/1.1 200")
        await asyncio.sleep(0.2)  # not reading: the router's and the kernel's buffers fill
        if path == "/length":
            body = await c.reader.readexactly(size)
        else:
            pieces = []
            while n := int(await c.reader.readuntil(b"\r\n"), 16):
                pieces.append((await c.reader.readexactly(n + 2))[:-2])
            assert await c.reader.readexactly(2) == b"\r\n"
            body = b"".join(pieces)
        assert body == payload
    assert (await c.get()).status == 200  # the connection still serves
    c.close()
    await teardown(s, d)
