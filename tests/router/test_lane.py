"""The compiled fast lane (_lane.c) held to the Python router byte for byte.

Every test runs the same conversations through a router with `lane=False` (Python, the
reference) and one with `lane=True`, each with its own dyno, and compares what the dyno
received, what the clients received and the log lines. Only what legitimately differs
between two runs is blanked: X-Request-Start, generated request ids (each run must log
every id it sent to the dyno or the client), the listening port in X-Forwarded-Port, and
the connect=/service= figures. The lane run also counts the connections it handed to
Python, so that a test cannot quietly compare Python with Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kiku.router.protocol import RouterProtocol
from router.routerkit import (
    FAST,
    Client,
    Dyno,
    Handler,
    Seen,
    Stack,
    read_body,
    route,
    run,
    stack,
    teardown,
)

# --- dynos -------------------------------------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
PAUSE = 0.02  # between writes: the router reads them apart

Step = bytes | float  # bytes to write (and drain), or seconds to wait
# A dyno's part: steps per path, then "keep" (the connection), "close" it, or "hold" it
# until the router hangs up. Paths not listed answer OK.
Script = dict[str, tuple[list[Step], str]]


def scripted(script: Script) -> Handler:
    """A dyno handler playing `script`."""

    async def handler(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        steps, then = script.get(seen.path, ([OK], "keep"))
        for step in steps:
            if isinstance(step, bytes):
                w.write(step)
                await w.drain()
            else:
                await asyncio.sleep(step)
        if then == "hold":
            await r.read()
        return then == "keep"

    return handler


class Tap(Dyno):
    """A routerkit Dyno that also keeps each request as it came (head bytes, then the
    body): `Seen` strips header values, and their spacing is part of what is compared."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(handler=handler)
        self.raw: list[bytes] = []

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                headers = [(k.strip(), v.strip()) for k, _, v in (x.partition(":") for x in lines)]
                headers = [(k, v) for k, v in headers if k]
                body = await read_body(reader, headers)
                self.raw.append(head + body)
                method, path, _ = line.split(" ", 2)
                seen = Seen(method, path, headers, body, conn)
                self.seen.append(seen)
                if not await self.handler(seen, reader, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def one_app(d: Dyno) -> dict[str, Any]:
    return {"app.localhost": route("app", d.backend)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- clients -----------------------------------------------------------------------------

Converse = Callable[[Client], Awaitable[bytes]]  # one client connection's bytes received


def req(
    target: str = "/",
    *headers: str,
    method: str = "GET",
    version: str = "1.1",
    host: str | None = "app.localhost",
    body: bytes = b"",
) -> bytes:
    """A request's bytes; str parts are latin-1, so "\\xe9" is the byte E9."""
    lines = [f"{method} {target} HTTP/{version}"]
    lines += [f"Host: {host}"] if host is not None else []
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader, got: bytearray, head_only: bool) -> None:
    """One response into `got`, bytes as they came, 1xx interim responses included."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        got += head
        status = int(head[9:12])
        if not 100 <= status < 200 or status == 101:
            break
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    if head_only or status in (101, 204, 304):
        return
    if fields.get(b"transfer-encoding") == b"chunked":
        while size := int((line := await reader.readline()).split(b";")[0], 16):
            got += line + await reader.readexactly(size + 2)
        got += line
        while (line := await reader.readline()) not in (b"\r\n", b""):
            got += line  # trailers
        got += line
    elif b"content-length" in fields:
        got += await reader.readexactly(int(fields[b"content-length"]))
    else:
        got += await reader.read()  # until the router closes


def talk(*requests: bytes, pipelined: bool = False, closes: bool = False) -> Converse:
    """Each request sent once the previous response came (all in one write if
    `pipelined`); then, with `closes`, whatever comes until the router closes."""

    async def converse(c: Client) -> bytes:
        got = bytearray()
        batches = [requests] if pipelined else [(r,) for r in requests]
        try:
            for batch in batches:
                c.send(b"".join(batch))
                for request in batch:
                    head_only = request.startswith(b"HEAD ")
                    await asyncio.wait_for(read_response(c.reader, got, head_only), 5)
        except asyncio.IncompleteReadError as exc:
            return bytes(got + exc.partial) + b"[closed early]"
        except TimeoutError:
            return bytes(got) + b"[no response]"
        return bytes(got) + (await closed(c) if closes else b"")

    return converse


async def closed(c: Client) -> bytes:
    """What comes before the router closes the connection, and whether it did."""
    try:
        return await asyncio.wait_for(c.reader.read(), 3) + b"[closed]"
    except TimeoutError:
        return b"[still open]"
    except ConnectionError:
        return b"[reset]"


# --- runs --------------------------------------------------------------------------------


class Adopted(set[RouterProtocol]):
    """Router.connections, counting the connections Python served (with the lane on:
    the ones the lane handed over)."""

    count = 0

    def add(self, conn: RouterProtocol) -> None:
        self.count += 1
        super().add(conn)


@dataclass
class Outcome:
    """One run, seen from the dyno, the clients and the log."""

    requests: list[str]  # what the dyno got, each request's head and body
    responses: list[str]  # what each client connection got
    log: list[str]
    handoffs: int  # connections Python served


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_START = re.compile(r"X-Request-Start: \d+")
_TIMING = re.compile(r"\b(connect|service)=\d+ms")


def normalize(text: str, port: int) -> str:
    """Blank what differs between any two runs (see the module's docstring)."""
    text = _UUID.sub("<id>", text)
    text = _START.sub("X-Request-Start: <ms>", text)
    text = text.replace(f"X-Forwarded-Port: {port}\r\n", "X-Forwarded-Port: <port>\r\n")
    return _TIMING.sub(r"\1=<ms>", text)


def generated_ids(texts: list[str]) -> set[str]:
    return {m for text in texts for m in _UUID.findall(text)}


async def trial(
    lane: bool,
    conversations: Sequence[Converse],
    script: Script,
    routes: Callable[[Dyno], dict[str, Any]],
    logs: int,
) -> Outcome:
    """The conversations, one client connection each, one after the other."""
    d = Tap(scripted(script))
    responses = []
    async with contextlib.AsyncExitStack() as cleanup:
        await d.start()
        cleanup.push_async_callback(d.stop)
        s: Stack = await stack(dataclasses.replace(FAST, lane=lane), routes(d))
        cleanup.push_async_callback(teardown, s)
        assert (s.router.lane is not None) is lane  # else the lane is not built
        s.router.connections = adopted = Adopted()
        for converse in conversations:
            c = await s.client()
            cleanup.callback(c.close)  # should the conversation fail
            responses.append(await converse(c))
            c.close()
        await s.wait_log(logs)
        await asyncio.sleep(0.05)  # a line too many shows too
    requests = [r.decode("latin-1") for r in d.raw]
    received = [r.decode("latin-1") for r in responses]
    unlogged = generated_ids(requests + received) - generated_ids(s.lines)
    assert not unlogged, f"request ids sent but never logged (lane={lane}): {unlogged}"
    return Outcome(
        [normalize(r, s.port) for r in requests],
        [normalize(r, s.port) for r in received],
        [normalize(line, s.port) for line in s.lines],
        adopted.count,
    )


def _lines(items: list[str]) -> list[str]:
    """Items as lines for a diff: CRLF-split, escaped, `~~~` between items."""
    return [
        line.encode("unicode_escape").decode()
        for item in items
        for line in ["~~~", *item.split("\r\n")]
    ]


def differences(python: Outcome, lane: Outcome) -> list[str]:
    diffs = []
    for name in ("requests", "responses", "log"):
        a, b = getattr(python, name), getattr(lane, name)
        if a != b:
            diff = difflib.unified_diff(_lines(a), _lines(b), "python", "lane", lineterm="")
            diffs.append(f"{name}:\n" + "\n".join(diff))
    return diffs


async def alike(
    *conversations: Converse,
    logs: int,
    script: Script | None = None,
    routes: Callable[[Dyno], dict[str, Any]] = one_app,
    handoffs: int = 0,
) -> Outcome:
    """Run through Python, then through the lane; they must not differ. Python's outcome
    is returned, for the test to check the case does what it means to."""
    script = script or {}
    python = await trial(False, conversations, script, routes, logs)
    lane = await trial(True, conversations, script, routes, logs)
    diffs = differences(python, lane)
    if lane.handoffs != handoffs:
        diffs.append(f"handoffs: the lane handed {lane.handoffs} connections to Python")
    assert not diffs, "the lane differs from Python:\n" + "\n\n".join(diffs)
    assert len(python.log) == logs, python.log
    return python


# --- tests -------------------------------------------------------------------------------


@run
async def test_request_heads_rewritten_alike() -> None:
    """Forwarding headers added, hop-by-hop and spoofed ones dropped, ids kept or made,
    hosts folded, odd bytes passed on: the dyno gets the same head from both."""
    rewrites = [
        req(
            "/xff",
            "X-Forwarded-For: 203.0.113.7",
            "X-Forwarded-For:",
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2",
            "X-Forwarded-For:   ",
        ),
        req("/via", "Via: 1.0 fred", "Via: 1.1 proxy.example.com (Squid)"),
        req("/rid-valid", "X-Request-Id: abcDEF0123456789+/=-abc"),
        req("/rid-short", "X-Request-Id: tooshort"),
        req("/rid-spaces", "X-Request-Id: long enough but with spaces"),
        req("/rid-long", "X-Request-Id: " + "a" * 201),
        req(
            "/hop",
            "Connection: keep-alive, TE",
            "Keep-Alive: timeout=5",
            "TE: trailers",
            "Trailer: X-Sum",
            "Proxy-Authorization: Basic Zm9vOmJhcg==",
            "Proxy-Foo: bar",
            "X-Kept: yes",
        ),
        req("/spoof", "X-Forwarded-Proto: https", "X-Forwarded-Port: 443", "X-Request-Start: 1"),
        req("/port", host="app.localhost:8080"),
        req("/upper", host="APP.LocalHost"),
        req("/spaces", "X-Padded:   padded value  ", "X-Tab:\tv\t"),
        req("/caf\xe9?q=\xff"),
        req("/latin", "X-Name: Jos\xe9"),
        req('/say"hi"'),
        req("/form", "Content-Length: 7", method="POST", body=b"a=1&b=2"),
    ]
    python = await alike(
        *(talk(r) for r in rewrites),
        talk(req("/close", "Connection: close"), closes=True),
        talk(
            req("/ten-kept", "Connection: keep-alive", version="1.0"),
            req("/ten-closed", version="1.0"),
            closes=True,
        ),
        logs=len(rewrites) + 3,
        handoffs=1,  # the non-ASCII path: Python's parser refuses it (400)
    )
    assert "X-Forwarded-For: 203.0.113.7, 10.0.0.1, 10.0.0.2, 127.0.0.1\r\n" in python.requests[0]
    assert "Via: 1.0 fred, 1.1 proxy.example.com (Squid), 1.1 kiku\r\n" in python.requests[1]
    assert "X-Request-Id: abcDEF0123456789+/=-abc\r\n" in python.requests[2]
    assert "Keep-Alive" not in python.requests[6] and "Proxy-" not in python.requests[6]
    assert 'path="/say%22hi%22"' in python.log[13]


@run
async def test_responses_relayed_alike() -> None:
    """Lengths (0 too), chunks (rechunked per read, trailers dropped), close-delimited
    bodies, HEAD, 204/304, 103 Early Hints, Connection-named headers, the dyno's own id."""
    script: Script = {
        "/length": (
            [b"HTTP/1.1 200 OK\r\nX-Padded:  v  \r\nContent-Length: 5\r\n\r\nhello"],
            "keep",
        ),
        "/chunked": (
            [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                b"5\r\nhello\r\n",
                PAUSE,
                b"6\r\n world\r\n3;ext=1\r\nabc\r\n",
                PAUSE,
                b"0\r\nX-Sum: 42\r\n\r\n",
            ],
            "keep",
        ),
        "/streamed": ([b"HTTP/1.1 200 OK\r\nX-Mode: close\r\n\r\nfirst", PAUSE, b"last"], "close"),
        "/head": ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"], "keep"),
        "/empty": ([b"HTTP/1.1 204 No Content\r\nX-Gone: yes\r\n\r\n"], "keep"),
        "/cached": ([b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n'], "keep"),
        "/hints": (
            [b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", PAUSE, OK],
            "keep",
        ),
        "/internal": (
            [
                b"HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: secret\r\n"
                b"X-Public: yes\r\nContent-Length: 2\r\n\r\nok"
            ],
            "keep",
        ),
        "/own-id": (
            [
                b"HTTP/1.1 200 OK\r\nX-Request-Id: dyno-chosen-id-0001\r\n"
                b"Content-Length: 2\r\n\r\nok"
            ],
            "keep",
        ),
        "/zero": ([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], "keep"),
        "/switch": ([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"], "close"),
    }
    paths = ["/length", "/chunked", "/streamed", "/empty", "/cached", "/hints", "/internal"]
    python = await alike(
        talk(*(req(p) for p in paths), req("/head", method="HEAD"), req("/own-id")),
        talk(req("/streamed", version="1.0"), closes=True),
        talk(req("/zero"), req("/")),
        talk(req("/switch"), closes=True),  # 101 to a request that asked for no upgrade
        script=script,
        logs=len(paths) + 6,
    )
    streamed = "Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n4\r\nlast\r\n0\r\n\r\n"
    assert streamed in python.responses[0]
    assert "X-Internal" not in python.responses[0] and "X-Public: yes" in python.responses[0]
    assert python.responses[1].endswith("Connection: close\r\n\r\nfirstlast[closed]")


@run
async def test_dyno_failures_answered_alike() -> None:
    """The H codes the lane answers itself: the same page, status and log line."""
    script: Script = {
        "/silent": ([], "hold"),  # H12; H27 when the client leaves first
        "/stall": ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], "hold"),  # H15
        "/hangup": ([], "close"),  # H13, after a retry on a fresh connection
        "/cut": ([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"], "close"),  # H18
        "/no-reason": ([b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"], "close"),  # H17
        "/garbage": ([b"NOT HTTP AT ALL\r\n\r\n"], "close"),  # H17
        "/both": (  # H17: a length and chunks, as smuggling looks
            [
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\n"
            ],
            "keep",
        ),
    }

    def routes(d: Dyno) -> dict[str, Any]:
        return {**one_app(d), "dead.localhost": route("dead", ("web.2", free_port()))}

    async def gone(c: Client) -> bytes:
        c.send(req("/silent"))
        await asyncio.sleep(0.1)
        return b""

    python = await alike(
        talk(req("/"), req("/hangup")),
        talk(req("/silent"), req("/")),
        talk(req("/stall"), closes=True),
        talk(req("/cut"), closes=True),
        talk(req("/no-reason")),
        talk(req("/garbage")),
        talk(req("/both")),
        talk(req("/", host="dead.localhost")),
        gone,
        script=script,
        routes=routes,
        logs=11,
    )
    codes = [m[1] if (m := re.search(r"code=(H\d+)", line)) else "-" for line in python.log]
    assert codes == ["-", "H13", "H12", "-", "H15", "H18", "H17", "H17", "H17", "H21", "H27"]
    assert "status=499" in python.log[-1]


@run
async def test_keep_alive_and_pipelining_alike() -> None:
    """Requests one after another on a connection, and two in one write: answered in
    order, and the connection kept."""
    post = req("/3", "Content-Length: 3", method="POST", body=b"abc")
    python = await alike(
        talk(req("/1"), req("/2"), post),
        talk(req("/a"), req("/b"), pipelined=True),
        logs=5,
    )
    paths = [r.split(" ")[1] for r in python.requests]
    assert paths == ["/1", "/2", "/3", "/a", "/b"]


@run
async def test_handover_mid_connection_keeps_order() -> None:
    """A request the lane serves, then on the same connection one it hands to Python
    (a chunked upload; an unknown host), then a plain one: Python carries on in order."""
    chunked = req("/up", "Transfer-Encoding: chunked", method="POST", body=b"3\r\nabc\r\n0\r\n\r\n")
    nowhere = req("/lost", host="nowhere.localhost")
    python = await alike(
        talk(req("/before"), chunked, req("/after")),
        talk(req("/before"), nowhere, req("/after")),
        talk(req("/before"), chunked, req("/after"), pipelined=True),
        logs=9,
        handoffs=3,
    )
    paths = [r.split(" ")[1] for r in python.requests]
    assert paths == ["/before", "/up", "/after", "/before", "/after", "/before", "/up", "/after"]
    assert "HTTP/1.1 404 Not Found" in python.responses[1]
