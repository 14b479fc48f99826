"""ProxyCycle: one client request carried to one dyno and its response carried back.

Built for the common case: the app is up and the pool holds a connection to its dyno, so
the cycle decides and sends from the protocol callback, without a task; only waiting for a
booting app or a new connection runs as one. Bytes move in protocol callbacks: client body
bytes arrive through `feed_body`, response bytes through the `response_*` callbacks of
BackendConnection, and what one read of the dyno produced reaches the client in one write.
Timeouts are deadlines that the connection's one watchdog timer checks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiku.router import pages
from kiku.router.backend import BackendConnection, BackendPool
from kiku.router.config import RouterConfig
from kiku.router.flow import BUFFER, PEER
from kiku.router.heads import RequestHead, is_hop, response_headers
from kiku.router.pages import RouterError
from kiku.router.table import CRASHED, NONE, UP, Backend, Route, RouteTable

if TYPE_CHECKING:
    from kiku.router.protocol import RouterProtocol

_NO_BODY_STATUS = frozenset({204, 304})
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # not allowed in a reason phrase
# Heroku: an opaque, HttpOnly session cookie (HEROKU_BEHAVIOUR §3.9).
_COOKIE_ATTRS = b"; Path=/; HttpOnly\r\n"


def _status_line(status: int, reason: bytes) -> bytes:
    line = _STATUS_LINES.get((status, reason))
    if line is None:
        line = b"HTTP/1.1 %d %b\r\n" % (status, reason)
        if len(_STATUS_LINES) >= 1024:  # dynos choose their reason phrases
            _STATUS_LINES.clear()
        _STATUS_LINES[status, reason] = line
    return line


_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}


def _ready(route: Route) -> bool:
    return route.state == UP and bool(route.backends)


class ProxyCycle:
    # Per-request state that starts out the same for every request lives here as class
    # attributes, so that making a cycle (once per request) sets only what differs.
    # The request
    body_buffered = 0
    body_done = False
    # The dyno side
    app_id = "-"
    route: Route | None = None
    counted = False  # in the app's backlog count (H11)
    set_affinity = b""  # a new heroku-session-affinity cookie for the client
    backend: Backend | None = None
    conn: BackendConnection | None = None
    reused = False
    connect_ms = 0
    sent_at = 0.0
    # A deadline (first byte, idle) and what to do then: the connection's watchdog
    # checks it, so a request arms no timer of its own.
    deadline = 0.0
    on_deadline: Callable[[], None] | None = None
    last_activity = 0.0
    # The response
    status = 0
    interim = False
    head_sent = False
    rechunk = False
    close_delimited = False
    bytes_out = 0  # to the client, for the log
    tunnel = False
    finished = False
    task: asyncio.Task[None] | None = None

    def __init__(
        self,
        protocol: RouterProtocol,
        req: RequestHead,
        *,
        config: RouterConfig,
        table: RouteTable,
        pool: BackendPool,
        log: Callable[[str], None],
    ) -> None:
        # Global state
        self.config = config
        self.table = table
        self.pool = pool
        self.log = log
        self.loop = protocol.loop  # not get_running_loop(): it asks the kernel for the pid
        # The client side
        self.protocol = protocol
        self.req = req
        self.body: list[bytes] = []  # body bytes read before a dyno connection is ready
        self.tunnel_buffer: list[bytes] = []
        self.out: list[bytes] = []  # bytes for the client, written by response_flush()

    # deciding where to go

    def start(self) -> None:
        """Decide where the request goes. Usually the table says the app is up and the pool
        has a connection to the dyno: the request is sent now, without a task. A task
        waits only for what takes time: an app booting, a new connection."""
        if self.finished:
            return
        if self.req.error is not None:
            self.reply(self.req.error)
            return
        route = self._lookup()
        if route is None:
            return
        if not _ready(route):
            self.task = self.loop.create_task(self._boot_then_send(route))
            return
        backend = self._first_backend(route)
        conn = self._pooled(route, backend)
        if conn is not None:
            self._send(conn)
        else:
            self.task = self.loop.create_task(self._connect_then_send(route, backend))

    def _lookup(self) -> Route | None:
        """The request's route, counted against the app's limits; None when the router
        answered instead (no such app, maintenance, limits, crashed, no web dynos)."""
        route = self.table.lookup(self.req.host)
        if route is None:
            self.reply(pages.NO_SUCH_APP)
            return None
        self.app_id = route.app_id or "-"
        self.route = route
        if route.maintenance:
            self.reply(pages.H80)
            return None
        if not self.counted and not self._admit(route):
            return None
        if _ready(route):
            return route
        if route.state == CRASHED:
            self.reply(pages.H10)
            return None
        if route.state == NONE:
            self.reply(pages.H14)
            return None
        return route  # starting: wait for it

    async def _boot_then_send(self, route: Route) -> None:
        """H20: hold the request while the app boots, up to `boot_timeout`."""
        deadline = self.loop.time() + self.config.boot_timeout
        while not _ready(route):
            remaining = deadline - self.loop.time()
            if remaining <= 0 or not await self.table.wait_changed(remaining):
                if not self.finished:
                    self.reply(pages.H20)
                return
            if self.finished:
                return
            found = self._lookup()
            if found is None:
                return
            route = found
        backend = self._first_backend(route)
        conn = self._pooled(route, backend)
        if conn is not None:
            self._send(conn)
        else:
            await self._connect_then_send(route, backend)

    async def _connect_then_send(self, route: Route, backend: Backend) -> None:
        conn = await self._connect(route, backend)
        if conn is None:
            return
        if self.finished:
            conn.close()
            return
        self._send(conn)

    def _admit(self, route: Route) -> bool:
        """Count this request against the app's limits on this router: client connections
        (H22) and requests in flight or held (H11). False when it was refused."""
        counts = self.protocol.router.counts
        app_id = route.app_id
        if self.protocol.app_id is None:
            if counts.connections(app_id) >= self.config.max_app_connections:
                self.req.close_after = True
                self.reply(pages.H22)
                return False
            counts.add(app_id, connections=1)
            self.protocol.app_id = app_id
        if counts.backlog(app_id) >= self.config.backlog_per_dyno * max(1, len(route.backends)):
            self.reply(pages.H11)
            return False
        counts.add(app_id, backlog=1)
        self.counted = True
        return True

    def _uncount(self) -> None:
        if self.counted and self.route is not None:
            self.counted = False
            self.protocol.router.counts.add(self.route.app_id, backlog=-1)

    def _first_backend(self, route: Route) -> Backend:
        """The dyno the client's affinity cookie names, if it is up; else the next one."""
        pinned = route.pinned(self.req.affinity) if route.affinity and self.req.affinity else None
        backend = pinned if pinned is not None else route.choose()
        assert backend is not None
        return backend

    def _pooled(self, route: Route, backend: Backend) -> BackendConnection | None:
        """An idle keep-alive connection to `backend`, if the pool has one."""
        self.backend = backend
        conn = self.pool.acquire(backend)
        if conn is not None:
            self.reused = True
            self._pin(route, backend)
        return conn

    async def _connect(self, route: Route, backend: Backend) -> BackendConnection | None:
        """A new connection to `backend` (whose pool had none), else to the next dynos:
        up to `connect_tries` of them, `connect_timeout` each (H19, H21)."""
        error = pages.H21
        tries = min(self.config.connect_tries, len(route.backends))
        for attempt in range(tries):
            if attempt:
                next_backend = route.choose()
                assert next_backend is not None
                backend = next_backend
                conn = self._pooled(route, backend)
                if conn is not None:
                    return conn
            t0 = self.loop.time()
            try:
                conn = await self.pool.connect(backend, self.config.connect_timeout)
            except TimeoutError:
                error = pages.H19
                continue
            except OSError:
                continue
            finally:
                self.connect_ms += int((self.loop.time() - t0) * 1000)
            self.reused = False
            self._pin(route, backend)
            return conn
        if not self.finished:
            self.reply(error)
        return None

    def _pin(self, route: Route, backend: Backend) -> None:
        """Session affinity: a client without a cookie for this dyno gets one."""
        if route.affinity:
            token = route.token(backend)
            self.set_affinity = token if token != self.req.affinity else b""

    def _send(self, conn: BackendConnection) -> None:
        self.conn = conn
        conn.attach(self)
        out = [self.req.head]
        if self.body and not self.req.websocket:
            out += [self._frame(c) for c in self.body]
        if self.body_done and self.req.chunked:
            out.append(b"0\r\n\r\n")
        conn.writelines(out)  # head, buffered body and its end: one write
        if self.body:
            self.body.clear()
            self.body_buffered = 0
            self.protocol.reading.resume(BUFFER)
        self.sent_at = self.loop.time()
        if self.body_done:  # else body_complete() starts the 30 s window
            self._arm(self.config.first_byte_timeout, self._first_byte_timeout)

    # the request body, from the client

    def _frame(self, data: bytes) -> bytes:
        if self.req.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def feed_body(self, data: bytes) -> None:
        if self.finished:
            return
        conn = self.conn
        if conn is not None and conn.alive:
            conn.write(self._frame(data))
            if self.head_sent:
                self.last_activity = self.loop.time()
            return
        self.body.append(data)
        self.body_buffered += len(data)
        if self.body_buffered > self.config.body_buffer:
            self.protocol.reading.pause(BUFFER)

    def body_complete(self) -> None:
        self.body_done = True
        conn = self.conn
        if conn is not None and not self.finished:
            if self.req.chunked:
                conn.write(b"0\r\n\r\n")
            if not self.head_sent:  # the 30 s window starts once the request is sent
                self._arm(self.config.first_byte_timeout, self._first_byte_timeout)

    def tunnel_from_client(self, data: bytes) -> None:
        if self.tunnel and self.conn is not None:
            self.conn.write(data)
            self.last_activity = self.loop.time()
        elif not self.finished:
            self.tunnel_buffer.append(data)

    # the response, from the dyno (BackendConnection callbacks)

    def response_head(self, conn: BackendConnection) -> None:
        status = conn.parser.get_status_code()
        if status < 100 or _CONTROL.search(conn.reason):
            self.backend_bad(conn)  # relayed, it would not be HTTP/1.1 (or split the head)
            return
        if 100 <= status < 200 and status != 101:
            self._interim(conn, status)
            return
        reason = conn.reason.strip()
        if not reason:
            self.backend_bad(conn)
            return
        self.status = status
        self._cancel_timer()
        no_body = self.req.method == b"HEAD" or status in _NO_BODY_STATUS or status == 101
        upgraded = status == 101 and self.req.websocket
        out, has_length, chunked, has_rid = response_headers(conn.headers, upgraded)
        out.insert(0, _status_line(status, reason))
        if not has_rid:
            out.append(self.req.rid_line)
        out.append(b"Via: 1.1 kiku\r\n")
        if self.set_affinity:
            out += (b"Set-Cookie: heroku-session-affinity=", self.set_affinity, _COOKIE_ATTRS)
        if not no_body and (chunked or not has_length):
            self.close_delimited = not chunked
            if self.req.http10:
                self.req.close_after = True
            else:
                self.rechunk = True
                out.append(b"Transfer-Encoding: chunked\r\n")
        if status == 101 and not upgraded:
            self.req.close_after = True
        if self.req.websocket and not upgraded:
            self.req.close_after = True  # the client's parser is past an upgrade
        if not upgraded:
            if self.req.close_after or not self.req.keep_alive:
                out.append(b"Connection: close\r\n")
            elif self.req.http10:
                out.append(b"Connection: keep-alive\r\n")
        out.append(b"\r\n")
        head = b"".join(out)
        self.head_sent = True
        self.bytes_out += len(head)
        self.out.append(head)
        self.last_activity = self.loop.time()
        self._arm(self.config.idle_timeout, self._idle_check)
        if self.req.method == b"HEAD" and not upgraded:
            conn.finish_bodyless()

    def _interim(self, conn: BackendConnection, status: int) -> None:
        self.interim = True
        out = [b"HTTP/1.1 %d %b\r\n" % (status, conn.reason.strip() or b"Continue")]
        for name, value in conn.headers:
            if not is_hop(name.lower()):
                out += (name, b": ", value, b"\r\n")
        out.append(b"\r\n")
        self.out.append(b"".join(out))

    def response_body(self, data: bytes) -> None:
        if self.finished:
            return
        self.bytes_out += len(data)
        self.last_activity = self.loop.time()
        if self.rechunk:
            self.out += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            self.out.append(data)

    def response_done(self, conn: BackendConnection) -> None:
        if self.interim:
            self.interim = False
            return
        if self.finished or (self.status == 101 and self.req.websocket):
            return  # an upgrade: response_upgraded() takes over
        if self.rechunk:
            self.out.append(b"0\r\n\r\n")
        self.response_flush()  # the client has it all: the rest is bookkeeping
        reusable = (
            self.body_done
            and not self.close_delimited
            and conn.parser.should_keep_alive()
            and conn.alive
        )
        if not self.body_done:
            self.req.close_after = True
        self.conn = None
        if reusable:
            self.pool.release(conn)
        else:
            conn.close()
        self._log(None)
        self._finish()

    def response_upgraded(self, rest: bytes) -> None:
        if self.status != 101 or not self.req.websocket:
            if self.conn is not None:
                self.backend_bad(self.conn)
            return
        self.tunnel = True
        self._log(None)
        if rest:
            self.out.append(rest)
        if self.conn is not None:
            for data in self.tunnel_buffer:
                self.conn.write(data)
        self.tunnel_buffer.clear()

    def tunnel_to_client(self, data: bytes) -> None:
        self.last_activity = self.loop.time()
        self.protocol.write(data)

    def response_flush(self) -> None:
        """Write what this read of the dyno's bytes produced for the client: head, body
        and chunk framing go out in one write (one system call), not one each."""
        if self.out:
            out, self.out = self.out, []
            transport = self.protocol.transport
            if transport is not None:
                transport.writelines(out)

    def backend_bad(self, conn: BackendConnection) -> None:
        conn.close()
        self.conn = None
        if self.finished:
            return
        if not self.head_sent:
            self.reply(pages.H17)
        else:
            self._log(pages.H17)
            self._abort()

    def backend_lost(self, conn: BackendConnection) -> None:
        self.conn = None
        if self.finished:
            return
        if self.tunnel:
            self._abort()
        elif not self.head_sent:
            if self.reused and not self.req.has_body and not self.req.websocket:
                self._retry()
            else:
                self.reply(pages.H13)
        elif self.close_delimited:
            if self.rechunk:
                self.out.append(b"0\r\n\r\n")
            self._log(None)
            self._finish()
        else:
            self._log(pages.H18, sock="backend")
            self._abort()

    def _retry(self) -> None:
        """A pooled connection the dyno had closed: send the request again, fresh."""
        self._cancel_timer()
        self.reused = False

        async def again() -> None:
            backend = self.backend
            assert backend is not None
            try:
                conn = await self.pool.connect(backend, self.config.connect_timeout)
            except (TimeoutError, OSError):
                if not self.finished:
                    self.reply(pages.H13)
                return
            if self.finished:
                conn.close()
                return
            self._send(conn)

        self.task = self.loop.create_task(again())

    def backend_pause_writing(self) -> None:
        self.protocol.reading.pause(PEER)

    def backend_resume_writing(self) -> None:
        self.protocol.reading.resume(PEER)

    def client_pause_writing(self) -> None:
        if self.conn is not None and self.conn.reading is not None:
            self.conn.reading.pause(PEER)

    def client_resume_writing(self) -> None:
        if self.conn is not None and self.conn.reading is not None:
            self.conn.reading.resume(PEER)

    # the client went away

    def client_lost(self) -> None:
        if self.finished:
            return
        if not self.tunnel:
            self.status = 499
            self._log(pages.H27, sock="client")
        self.finished = True
        self.out.clear()
        self._cancel_timer()
        self._uncount()
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def client_idle(self) -> None:
        """The client sent part of its request, then nothing for the idle window: H28."""
        if self.finished:
            return
        self._log(pages.H28)
        self._abort()

    # timers

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline = self.loop.time() + delay
        self.on_deadline = callback
        watchdog = self.protocol.watchdog
        if watchdog is None or watchdog.when() > deadline:  # else it looks in time
            self.protocol.watch(delay)

    def _cancel_timer(self) -> None:
        self.on_deadline = None

    def check_deadline(self, now: float) -> None:
        """The connection's watchdog: run what is due, else ask it to look again later."""
        callback = self.on_deadline
        if callback is None:
            return
        if now < self.deadline:
            self.protocol.watch(self.deadline - now)
            return
        self.on_deadline = None
        callback()

    def _first_byte_timeout(self) -> None:
        if not self.head_sent and not self.finished:
            self.reply(pages.H12)

    def _idle_check(self) -> None:
        if self.finished:
            return
        idle = self.loop.time() - self.last_activity
        if idle < self.config.idle_timeout:
            self._arm(self.config.idle_timeout - idle, self._idle_check)
            return
        if not self.tunnel:
            self._log(pages.H15)
        self._abort()

    # endings

    def reply(self, error: RouterError) -> None:
        """Answer with the router's own page for `error`, log it, and end the cycle."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if not self.body_done or error.status == 400 or self.req.websocket:
            self.req.close_after = True
        self.status = error.status
        if not self.head_sent:
            extra = self.req.rid_line
            if self.req.close_after or not self.req.keep_alive:
                extra += b"Connection: close\r\n"
            data = pages.response(error, extra, self._custom_page(error))
            if self.req.method == b"HEAD":
                data = data[: data.index(b"\r\n\r\n") + 4]
            self.bytes_out += len(data)
            self.head_sent = True
            self.out.append(data)
        self._log(None if error is pages.NO_SUCH_APP else error)
        self._finish()

    def _custom_page(self, error: RouterError) -> str:
        """The app's own page for this error (MAINTENANCE_PAGE_URL, ERROR_PAGE_URL)."""
        route = self.route
        if route is None:
            return ""
        if error is pages.H80:
            return route.maintenance_page
        return route.error_page if error.page == "application-error" else ""

    def _abort(self) -> None:
        self.req.close_after = True
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self._finish()

    def _finish(self) -> None:
        if self.finished:
            return
        self.response_flush()
        self.finished = True
        self._cancel_timer()
        self._uncount()
        self.protocol.cycle_done(self, self.req.keep_alive and not self.req.close_after)

    def _log(self, error: RouterError | None, sock: str = "") -> None:
        req = self.req
        path = req.path.decode("latin-1").replace('"', "%22")
        if error is None:
            head, status = "at=info ", self.status
        else:
            head = f'at={error.at} code={error.code} desc="{error.desc}" '
            status = self.status if self.head_sent else error.status
            if error is pages.H27 or error is pages.H28:
                status = 499
        if sock:
            head = f"sock={sock} {head}"
        if self.sent_at and error is not pages.H80:
            service = int((self.loop.time() - self.sent_at) * 1000)
            dyno = self.backend.dyno if self.backend is not None else ""
            timing = f"dyno={dyno} connect={self.connect_ms}ms service={service}ms"
        else:
            timing = "dyno= connect= service="  # answered by the router itself
        self.log(
            f"{self.app_id} {head}method={req.method.decode('latin-1')} "
            f'path="{path}" host={req.host} request_id={req.request_id} '
            f'fwd="{req.fwd}" {timing} '
            f"status={status} bytes={self.bytes_out} protocol={self.protocol.proto}"
        )
