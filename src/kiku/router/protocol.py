"""RouterProtocol: one client connection. Parses requests with httptools, runs a ProxyCycle
per request (one at a time; pipelined requests wait their turn), keeps the connection alive.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from kiku.router import pages
from kiku.router.cycle import ProxyCycle
from kiku.router.flow import PIPELINE, ReadGate
from kiku.router.heads import build_request, listener_headers

if TYPE_CHECKING:
    from kiku.router.server import Router


class _TooLarge(Exception):
    pass


class RouterProtocol(asyncio.Protocol):
    def __init__(
        self,
        router: Router,
        proto: str | None = None,
        port: int | None = None,
        initial: bytes = b"",
    ) -> None:
        # Global state
        self.router = router
        self.config = router.config
        self.loop = asyncio.get_running_loop()
        # The listener: X-Forwarded-Proto and -Port, the log's protocol=
        self.proto = proto or router.config.proto
        self.port = port or router.port
        self.listener = listener_headers(self.proto, self.port)
        # Per-connection state
        self.transport: asyncio.Transport | None = None
        self.reading: ReadGate = None  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = ""
        self.client_ip_bytes = b""
        self.cycles: deque[ProxyCycle] = deque()
        self.upgraded = False
        self.closing = False
        # Keep-alive: closed `keepalive_timeout` after its last response unless a byte
        # came since. One timer, re-armed when it fires early, not one per request.
        self.idle_handle: asyncio.TimerHandle | None = None
        self.idle_since: float | None = None  # None: not idle (bytes came, or a request)
        # The cycles' deadlines (first byte, idle): one watchdog timer, armed at most
        # `watch_period` ahead so that a nearer deadline set later still finds it armed.
        self.watchdog: asyncio.TimerHandle | None = None
        self.watch_period = min(self.config.first_byte_timeout, self.config.idle_timeout)
        self.app_id: str | None = None  # the app its first request went to (H22 counts)
        # A request half sent: when the client last sent a byte, and the H28 timer.
        self.in_request = False
        self.last_rx = 0.0
        self.client_timer: asyncio.TimerHandle | None = None
        # Per-request state
        self.starting: ProxyCycle | None = None  # to start once this read is parsed
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.initial = initial  # bytes the fast lane read before handing the connection over

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        self.reading = ReadGate(transport)
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""
        self.client_ip_bytes = self.client_ip.encode()
        self.router.connections.add(self)
        self._idle()
        if self.initial:
            data, self.initial = self.initial, b""
            self.data_received(data)

    def data_received(self, data: bytes) -> None:
        self.last_rx = self.loop.time()
        self.idle_since = None
        if self.upgraded:
            if self.cycles:
                self.cycles[-1].tunnel_from_client(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = int(exc.args[0]) if exc.args else len(data)
            cycle = self.cycles[-1] if self.cycles else None
            if cycle is not None and cycle.req.websocket:
                self.upgraded = True
                if data[offset:]:
                    cycle.tunnel_from_client(data[offset:])
            else:
                self.reading.pause(PIPELINE)  # nothing more is read on this connection
        except httptools.HttpParserError as exc:
            self._bad_request(exc)
        # A request starts once the bytes read with its head are parsed: a small body
        # that came along goes to the dyno in the same write as the head.
        cycle, self.starting = self.starting, None
        if cycle is not None:
            cycle.start()
        elif not self.in_request and not self.cycles and not self.upgraded:
            self._idle()  # only blank lines came: the keep-alive timeout still applies

    def connection_lost(self, exc: Exception | None) -> None:
        self.router.connections.discard(self)
        for timer in (self.idle_handle, self.watchdog, self.client_timer):
            if timer is not None:
                timer.cancel()
        if self.app_id is not None:
            self.router.counts.add(self.app_id, connections=-1)
        for cycle in list(self.cycles):
            cycle.client_lost()
        self.cycles.clear()
        self.transport = None

    def pause_writing(self) -> None:
        if self.cycles:
            self.cycles[0].client_pause_writing()

    def resume_writing(self) -> None:
        if self.cycles:
            self.cycles[0].client_resume_writing()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.in_request = True
        if self.client_timer is None:
            self.client_timer = self.loop.call_later(
                self.config.idle_timeout, self._client_idle_check
            )

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.config.max_request_line:
            raise _TooLarge("request line")

    def on_header(self, name: bytes, value: bytes) -> None:
        if (
            len(name) > self.config.max_header_name
            or len(name) + len(value) + 2 > self.config.max_header_line
            or len(self.headers) >= self.config.max_headers
        ):
            raise _TooLarge("header")
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        req = build_request(
            parser.get_method(),
            self.url,
            parser.get_http_version(),
            parser.should_keep_alive(),
            self.headers,
            self.client_ip_bytes,
            self.listener,
        )
        router = self.router
        cycle = ProxyCycle(
            self, req, config=self.config, table=router.table, pool=router.pool, log=router.log
        )
        self.cycles.append(cycle)
        if len(self.cycles) == 1:
            self.starting = cycle
        else:
            self.reading.pause(PIPELINE)

    def on_body(self, body: bytes) -> None:
        self.cycles[-1].feed_body(body)

    def on_message_complete(self) -> None:
        self.in_request = False
        self.cycles[-1].body_complete()

    # used by cycles

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def cycle_done(self, cycle: ProxyCycle, keep_alive: bool) -> None:
        if self.cycles and self.cycles[0] is cycle:
            self.cycles.popleft()
        if self.transport is None:
            return
        if not keep_alive or self.closing:
            self.transport.close()
            return
        self.reading.resume(PIPELINE)
        if self.cycles:
            # Not now: the dyno's connection that just finished may still be parsing.
            self.loop.call_soon(self.cycles[0].start)
        else:
            self._idle()

    def shutdown(self) -> None:
        """Stop taking requests: close now if idle, else after the current response."""
        self.closing = True
        if not self.cycles and self.transport is not None:
            self.transport.close()

    def _client_idle_check(self) -> None:
        """H28: a request begun, then no byte from the client for the idle window (55 s).
        One timer per connection, pushed back while bytes come: no timer per read."""
        self.client_timer = None
        if not self.in_request or self.transport is None or self.upgraded:
            return
        idle = self.loop.time() - self.last_rx
        if self.reading.paused:  # we are not reading (back-pressure): not the client's fault
            idle = 0.0
        if idle < self.config.idle_timeout:
            self.client_timer = self.loop.call_later(
                self.config.idle_timeout - idle, self._client_idle_check
            )
            return
        self.in_request = False
        self.reading.pause(PIPELINE)
        cycle = self.cycles[-1] if self.cycles else None
        if cycle is not None and not cycle.body_done:
            cycle.client_idle()
            return
        # Headers never completed: no cycle to tell, the protocol logs it.
        method = self.parser.get_method().decode("latin-1") if self.url else ""
        path = self.url.decode("latin-1").replace('"', "%22")
        self.router.log(
            f'{self.app_id or "-"} at=warning code=H28 desc="Client Connection Idle" '
            f'method={method} path="{path}" host= request_id= fwd="{self.client_ip}" dyno= '
            f"connect= service= status=499 bytes=0 protocol={self.proto}"
        )
        if self.cycles:
            self.cycles[-1].req.close_after = True  # after the response under way
        else:
            self.transport.close()

    def watch(self, delay: float) -> None:
        """A cycle has a deadline `delay` seconds from now: the watchdog looks by then."""
        now = self.loop.time()
        timer = self.watchdog
        if timer is not None:
            if timer.when() <= now + delay:
                return
            timer.cancel()
        self.watchdog = self.loop.call_at(now + min(delay, self.watch_period), self._watch)

    def _watch(self) -> None:
        self.watchdog = None
        now = self.loop.time()
        for cycle in list(self.cycles):
            cycle.check_deadline(now)

    def _idle(self) -> None:
        self.idle_since = now = self.loop.time()
        if self.idle_handle is None:
            self.idle_handle = self.loop.call_at(
                now + self.config.keepalive_timeout, self._idle_close
            )

    def _idle_close(self) -> None:
        self.idle_handle = None
        if self.idle_since is None or self.cycles or self.transport is None:
            return  # busy since: the next response arms it again
        left = self.idle_since + self.config.keepalive_timeout - self.loop.time()
        if left > 0:
            self.idle_handle = self.loop.call_later(left, self._idle_close)
            return
        self.transport.close()

    def _bad_request(self, exc: Exception) -> None:
        """A request we cannot parse: 400 (after any running response), then close."""
        self.reading.pause(PIPELINE)
        if self.cycles and not self.cycles[-1].body_done:
            cycle = self.cycles[-1]
            if cycle is not self.cycles[0] or cycle.head_sent:
                cycle.req.close_after = True
                return
            cycle.req.error = pages.H26
            cycle.reply(pages.H26)
            return
        data = pages.response(pages.H26, b"Connection: close\r\n")
        self.router.log(
            f'- at=error code=H26 desc="Request Error" cause="bad request" method= path="" '
            f'host= request_id= fwd="{self.client_ip}" dyno= connect= service= status=400 '
            f"bytes={len(data)} protocol={self.proto}"
        )
        if not self.cycles and self.transport is not None:
            self.transport.write(data)
            self.transport.close()
        elif self.cycles:
            self.cycles[-1].req.close_after = True
