"""Real sockets on 127.0.0.1 for router tests: a route feed, tiny dynos, a raw client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import uvloop

from kiku.router import Router, RouterConfig
from kiku.router.tls import Certificates

# Set per test by conftest.py: False makes stack() serve everything in Python (no lane).
LANE = True

FAST = RouterConfig(
    connect_timeout=0.5,
    first_byte_timeout=0.5,
    idle_timeout=0.5,
    boot_timeout=2.0,
    keepalive_timeout=5.0,
)


def run(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh uvloop event loop."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        uvloop.run(asyncio.wait_for(fn(*args, **kwargs), 30))

    return wrapper


def route(app: str, *backends: tuple[str, int], state: str = "up", **extra: Any) -> dict[str, Any]:
    return {
        "app": app,
        "app_id": f"id-{app}",
        "maintenance": extra.get("maintenance", False),
        "backends": [
            {"dyno": dyno, "address": "127.0.0.1", "port": port} for dyno, port in backends
        ],
        "state": state,
        **{k: v for k, v in extra.items() if k != "maintenance"},
    }


class FeedServer:
    """The control plane's side of the route feed: a unix socket sending snapshot lines."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="kiku-feed-")
        self.path = os.path.join(self.dir, "routes.sock")
        self.routes: dict[str, Any] = {}
        self.certs: dict[str, str] = {}
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.connects = 0

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._client, self.path)

    async def _client(self, _r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connects += 1
        self.writers.append(writer)
        writer.write(self._line())
        await writer.drain()

    def _line(self) -> bytes:
        message = {"type": "snapshot", "routes": self.routes, "certs": self.certs}
        return json.dumps(message).encode() + b"\n"

    async def send(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        for w in self.writers:
            if not w.is_closing():
                w.write(self._line())
                await w.drain()

    async def stop(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        if os.path.exists(self.path):
            os.unlink(self.path)

    async def close(self) -> None:
        await self.stop()
        os.rmdir(self.dir)


class LogReceiver:
    """logplex's side of the router log transport: a unix datagram socket, collecting
    lines `<app_id> <time> <router line>`."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="kiku-logplex-")
        self.path = os.path.join(self.dir, "logplex.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.datagrams: list[bytes] = []

    def follow(self) -> None:
        """Read datagrams as they come, as logplex does (the kernel queues only
        net.unix.max_dgram_qlen of them, 10 by default, before senders get EAGAIN)."""
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self.receive)

    def receive(self) -> list[str]:
        """Every line that has arrived so far (all datagrams read)."""
        while True:
            try:
                self.datagrams.append(self.sock.recv(1 << 20))
            except BlockingIOError:
                break
        return [line for d in self.datagrams for line in d.decode().splitlines()]

    async def wait(self, n: int = 1, timeout: float = 5.0) -> list[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.receive()) < n and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self.receive()

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.rmdir(self.dir)


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    conn: int

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


Handler = Callable[["Seen", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
    return lines[0], headers


async def read_body(
    reader: asyncio.StreamReader, headers: list[tuple[str, str]], until_close: bool = False
) -> bytes:
    h = {k.lower(): v for k, v in headers}
    if "chunked" in h.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readline()
                return body
            body += await reader.readexactly(size)
            await reader.readline()
    if "content-length" in h:
        return await reader.readexactly(int(h["content-length"]))
    if until_close:
        return await reader.read()
    return b""


async def echo(seen: Seen, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
    """Answer with JSON describing what the dyno saw."""
    body = json.dumps(
        {
            "method": seen.method,
            "path": seen.path,
            "headers": seen.headers,
            "body": seen.body.decode("latin-1"),
            "conn": seen.conn,
        }
    ).encode()
    w.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Keep-Alive: timeout=5\r\nX-Dyno: %b\r\n\r\n%b" % (len(body), seen.path.encode(), body)
    )
    return True


class Dyno:
    """A tiny HTTP/1.1 backend on 127.0.0.1; `handler` answers each request."""

    def __init__(self, name: str = "web.1", handler: Handler = echo) -> None:
        self.name = name
        self.handler = handler
        self.seen: list[Seen] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Dyno:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        self.writers.append(writer)
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    break
                line, headers = head
                method, path, _ = line.split(" ", 2)
                body = await read_body(reader, headers)
                seen = Seen(method, path, headers, body, conn)
                self.seen.append(seen)
                if not await self.handler(seen, reader, writer):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in self.writers:
                w.close()
            await self.server.wait_closed()

    @property
    def backend(self) -> tuple[str, int]:
        return (self.name, self.port)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """A raw HTTP client connection to the router."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def get(
        self, path: str = "/", host: str = "app.localhost", headers: str = "", method: str = "GET"
    ) -> Response:
        self.send(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
        return await self.response(head_only=method == "HEAD")

    async def response(self, head_only: bool = False) -> Response:
        head = await read_head(self.reader)
        assert head is not None, "connection closed before a response"
        line, headers = head
        _, status, reason = ([*line.split(" ", 2), ""])[:3]
        body = b"" if head_only else await read_body(self.reader, headers, until_close=True)
        return Response(int(status), reason, headers, body)

    async def closed(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(), 2) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.close()


@dataclass
class Stack:
    """A router fed by a FeedServer, with log lines collected."""

    router: Router
    feed: FeedServer
    lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.router.port

    async def routes(self, routes: dict[str, Any]) -> None:
        before = self.router.table.version
        await self.feed.send(routes)
        for _ in range(200):
            if self.router.table.version > before:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the router never took the snapshot")

    async def client(self) -> Client:
        return await Client.connect(self.port)

    async def wait_log(self, n: int = 1) -> list[str]:
        for _ in range(200):
            if len(self.lines) >= n:
                break
            await asyncio.sleep(0.01)
        return self.lines


async def stack(
    config: RouterConfig = FAST,
    routes: dict[str, Any] | None = None,
    *,
    certificates: Certificates | None = None,
    certs: dict[str, str] | None = None,
) -> Stack:
    feed = FeedServer()
    feed.routes = routes or {}
    feed.certs = certs or {}
    await feed.start()
    lines: list[str] = []
    if not LANE:
        config = dataclasses.replace(config, lane=False)
    router = Router(config, routes_socket=feed.path, log=lines.append, certificates=certificates)
    await router.start("127.0.0.1", 0)
    if certificates is not None:
        await router.start_tls("127.0.0.1", 0)
    s = Stack(router, feed, lines)
    assert router.feed is not None
    for _ in range(200):
        if router.feed.snapshots:
            break
        await asyncio.sleep(0.01)
    return s


async def teardown(s: Stack, *dynos: Dyno) -> None:
    await s.router.stop(grace=1)
    await s.feed.close()
    for d in dynos:
        await d.stop()
