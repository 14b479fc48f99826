"""Connections to dynos: one asyncio Protocol per TCP connection, and a keep-alive pool."""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

import httptools

from kiku.router.flow import ReadGate
from kiku.router.table import Backend


class ResponseSink(Protocol):
    """What a BackendConnection reports to (a ProxyCycle)."""

    def response_head(self, conn: BackendConnection) -> None: ...
    def response_body(self, data: bytes) -> None: ...
    def response_done(self, conn: BackendConnection) -> None: ...
    def response_upgraded(self, rest: bytes) -> None: ...
    def tunnel_to_client(self, data: bytes) -> None: ...
    def backend_bad(self, conn: BackendConnection) -> None: ...
    def backend_lost(self, conn: BackendConnection) -> None: ...
    def response_flush(self) -> None: ...
    def backend_pause_writing(self) -> None: ...
    def backend_resume_writing(self) -> None: ...


class BackendConnection(asyncio.Protocol):
    def __init__(self, pool: BackendPool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.reading: ReadGate | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        # The response head being read, for the sink's response_head().
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_head = False  # header callbacks after the head are a chunked body's trailer
        self.tunnel = False
        self.skip_body = False  # the response to a HEAD request has no body
        self.idle_handle: asyncio.TimerHandle | None = None
        self.idle_since: float | None = None  # in the pool since; None while in use
        self.requests = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        self.reading = ReadGate(transport)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:  # bytes from an idle pooled connection: not trustworthy
            self.close()
            return
        if self.tunnel:
            sink.tunnel_to_client(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = int(exc.args[0]) if exc.args else len(data)
            self.tunnel = True
            sink.response_upgraded(data[offset:])
        except httptools.HttpParserError:
            sink.backend_bad(self)
        sink.response_flush()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.forget(self)
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.backend_lost(self)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.backend_pause_writing()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.backend_resume_writing()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.in_head = True

    def on_status(self, status: bytes) -> None:
        if self.sink is not None:
            self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.sink is not None and self.in_head:  # a trailer is dropped, not kept for later
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.sink is not None:
            self.sink.response_head(self)
        self.reason, self.headers = b"", []  # the next head (after a 100) starts empty

    def on_body(self, body: bytes) -> None:
        if self.sink is not None and not self.skip_body:
            self.sink.response_body(body)

    def on_message_complete(self) -> None:
        if self.sink is not None and not self.skip_body:
            self.sink.response_done(self)

    # used by the cycle

    def finish_bodyless(self) -> None:
        """A HEAD response ends with its head; the parser must not wait for a body."""
        self.skip_body = True
        sink = self.sink
        if sink is not None:
            sink.response_done(self)

    def attach(self, sink: ResponseSink) -> None:
        self.sink = sink
        self.requests += 1
        if self.skip_body:
            self.parser = httptools.HttpResponseParser(self)
            self.skip_body = False

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        assert self.transport is not None
        self.transport.writelines(data)

    def close(self) -> None:
        self.sink = None
        if self.transport is not None:
            self.transport.close()

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


class BackendPool:
    """Idle keep-alive connections per backend address, closed after `idle_timeout`."""

    def __init__(self, *, idle_timeout: float = 90.0, max_idle: int = 64) -> None:
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[BackendConnection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.opened = 0

    def acquire(self, backend: Backend) -> BackendConnection | None:
        conns = self._idle.get((backend.address, backend.port))
        while conns:
            conn = conns.pop()
            conn.idle_since = None
            if conn.alive:
                return conn
        return None

    async def connect(self, backend: Backend, timeout: float) -> BackendConnection:
        loop = asyncio.get_running_loop()
        key = (backend.address, backend.port)
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: BackendConnection(self, key), *key), timeout
        )
        self.opened += 1
        return conn

    def release(self, conn: BackendConnection) -> None:
        conn.sink = None
        if conn.reading is not None:
            conn.reading.clear()
        conns = self._idle.get(conn.key)
        if conns is None:
            conns = self._idle[conn.key] = []
        if not conn.alive or len(conns) >= self.max_idle:
            conn.close()
            return
        conns.append(conn)
        # One timer per connection, re-armed when it fires early; not one per request.
        if self._loop is None:  # once: get_running_loop() asks the kernel for the pid
            self._loop = asyncio.get_running_loop()
        loop = self._loop
        conn.idle_since = now = loop.time()
        if conn.idle_handle is None:
            conn.idle_handle = loop.call_at(now + self.idle_timeout, self._expire, conn)

    def _expire(self, conn: BackendConnection) -> None:
        """Close `conn` once it has sat in the pool for `idle_timeout`."""
        conn.idle_handle = None
        if conn.idle_since is None:
            return  # in use: release() arms the timer again
        loop = asyncio.get_running_loop()
        left = conn.idle_since + self.idle_timeout - loop.time()
        if left > 0:
            conn.idle_handle = loop.call_later(left, self._expire, conn)
        else:
            conn.close()

    def forget(self, conn: BackendConnection) -> None:
        conns = self._idle.get(conn.key)
        if conns and conn in conns:
            conns.remove(conn)
        if conn.idle_handle is not None:
            conn.idle_handle.cancel()
            conn.idle_handle = None

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in list(conns):
                conn.close()
        self._idle.clear()
