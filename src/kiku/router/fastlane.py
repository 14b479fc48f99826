"""FastLane: the Python side of the router's compiled fast lane (`_lane.c`).

The lane owns the plain-HTTP listening socket. The usual request (a known host whose app
is up, no body or a small one read whole, no upgrade) goes from client to dyno and back
inside the lane, on an epoll set the event loop polls: no Python runs per request. A
connection whose request is anything else is handed over here, with the bytes read so
far, before any of it reached a dyno, and served by `RouterProtocol` from then on. So the
Python router stays the one full implementation of Heroku's rules, and the lane repeats
only the common path (tests/router/test_lane.py holds the two to the same bytes).

`_lane.so` is built by `make install` (scripts/build-lane.sh). Without it the router
runs all in Python, as it did before the lane existed, and says so once on stderr.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiku.router import pages
from kiku.router.table import UP, Route, RouteTable

if TYPE_CHECKING:
    from kiku.router.server import Router

try:
    from kiku.router import _lane
except ImportError as exc:  # pragma: no cover - a host without a C compiler
    _lane = None  # type: ignore[assignment]
    _MISSING = str(exc)
else:
    _MISSING = ""

_warned = False


def available() -> bool:
    """Whether the compiled lane is there; if not, say so once (the router still works)."""
    global _warned
    if _lane is None and not _warned:
        _warned = True
        print(
            f"router: the fast lane is not built ({_MISSING}); serving in Python only. "
            "`make install` builds it (needs gcc and the Python headers).",
            file=sys.stderr,
            flush=True,
        )
    return _lane is not None


def lane_routes(table: RouteTable, backlog_per_dyno: int) -> list[tuple[Any, ...]]:
    """The routes the lane may serve itself: exact hosts of up apps on IPv4 dynos, without
    maintenance or session affinity. Every other host is the Python router's."""
    routes = []
    for host, route in table.items():
        if not _lane_kind(host, route):
            continue
        page = pages.template(pages.H12, route.error_page)  # every lane error is a 503 page
        limit = backlog_per_dyno * max(1, len(route.backends))
        backends = [(b.dyno.encode(), b.address, b.port) for b in route.backends]
        routes.append((host.encode(), route.app_id.encode(), page, limit, backends))
    return routes


def _lane_kind(host: str, route: Route) -> bool:
    if host.startswith("*.") or not host.isascii():
        return False
    if route.state != UP or not route.backends or route.maintenance or route.affinity:
        return False
    for backend in route.backends:
        try:
            ipaddress.IPv4Address(backend.address)
        except ValueError:
            return False
    return True


class FastLane:
    """The lane on `sock` for `router`: polled when its epoll set is readable, its
    deadlines checked every `tick` seconds, its routes replaced with the table's."""

    def __init__(self, router: Router, sock: socket.socket) -> None:
        assert _lane is not None
        config = router.config
        self.router = router
        self.sock = sock  # kept open: the lane accepts on its descriptor
        self.loop = asyncio.get_running_loop()
        self.lane = _lane.Lane(
            listen_fd=sock.fileno(),
            port=router.port,
            proto=config.proto,
            connect_timeout=config.connect_timeout,
            connect_tries=config.connect_tries,
            first_byte_timeout=config.first_byte_timeout,
            idle_timeout=config.idle_timeout,
            keepalive_timeout=config.keepalive_timeout,
            backend_idle_timeout=config.backend_idle_timeout,
            backlog_per_dyno=config.backlog_per_dyno,
            max_app_connections=config.max_app_connections,
        )
        shortest = min(config.connect_timeout, config.first_byte_timeout, config.idle_timeout)
        self.tick_every = max(0.01, min(0.1, shortest / 10))
        self._tasks: set[asyncio.Task[None]] = set()
        self.routes_changed()
        router.table.listeners.append(self.routes_changed)
        self.loop.add_reader(self.lane.fileno(), self._poll)
        self._timer: asyncio.TimerHandle | None = self.loop.call_later(self.tick_every, self._tick)

    def routes_changed(self) -> None:
        self.lane.set_routes(lane_routes(self.router.table, self.router.config.backlog_per_dyno))

    def active(self) -> int:
        """Client connections the lane still holds."""
        return int(self.lane.active())

    def shutdown(self) -> None:
        """Stop accepting; idle connections close now, busy ones after their response."""
        self._take(self.lane.shutdown())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.loop.remove_reader(self.lane.fileno())
        if self.routes_changed in self.router.table.listeners:
            self.router.table.listeners.remove(self.routes_changed)
        self.lane.close()
        self.sock.close()

    def _poll(self) -> None:
        self._take(self.lane.poll())

    def _tick(self) -> None:
        self._timer = self.loop.call_later(self.tick_every, self._tick)
        self._take(self.lane.tick())

    def _take(self, result: tuple[bytes | None, int, list[tuple[int, bytes]] | None]) -> None:
        log, lines, handoffs = result
        if log is not None:
            _log_writer(self.router.log)(log, lines)
        if handoffs:
            for fd, data in handoffs:
                self._adopt(fd, data)

    def _adopt(self, fd: int, data: bytes) -> None:
        """A connection the lane handed over: RouterProtocol serves it from here on,
        starting with the bytes the lane had read."""
        from kiku.router.protocol import RouterProtocol

        sock = socket.socket(fileno=fd)
        router = self.router

        async def adopt() -> None:
            try:
                await self.loop.connect_accepted_socket(
                    lambda: RouterProtocol(router, initial=data), sock
                )
            except OSError:
                sock.close()

        task = self.loop.create_task(adopt())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _log_writer(log: Callable[[str], None]) -> Callable[[bytes, int], None]:
    """Where the lane's lines go: straight into a DatagramLog's batch (they carry their
    time already), else one call of `log` per line, as the Python path makes."""
    add_stamped = getattr(log, "add_stamped", None)
    if add_stamped is not None:
        return add_stamped  # type: ignore[no-any-return]

    def each_line(data: bytes, _lines: int) -> None:
        for line in data.decode("utf-8", "replace").splitlines():
            app_id, _, rest = line.partition(" ")
            log(f"{app_id} {rest.partition(' ')[2]}")

    return each_line
