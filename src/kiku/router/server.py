"""Router: the listening socket, the route table, the feed and the backend pool, together."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable

from kiku.router import fastlane
from kiku.router.backend import BackendPool
from kiku.router.config import RouterConfig
from kiku.router.counts import AppCounts, LaneCounts
from kiku.router.feed import RouteFeed
from kiku.router.protocol import RouterProtocol
from kiku.router.table import RouteTable
from kiku.router.tls import Certificates


def stdout_log(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Router:
    """One router process's serving side. Log lines go to `log`, `<app_id> <router line>`."""

    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        table: RouteTable | None = None,
        routes_socket: str | None = None,
        log: Callable[[str], None] | None = None,
        certificates: Certificates | None = None,
    ) -> None:
        self.config = config if config is not None else RouterConfig()
        self.table = table if table is not None else RouteTable()
        self.pool = BackendPool(idle_timeout=self.config.backend_idle_timeout)
        self.log = log if log is not None else stdout_log
        self.certificates = certificates
        self.feed = (
            RouteFeed(routes_socket, self.table, certificates=certificates)
            if routes_socket
            else None
        )
        self.connections: set[RouterProtocol] = set()
        self.counts = AppCounts()  # H22 and H11, per app; the lane's once it runs
        self.server: asyncio.Server | None = None
        self.lane: fastlane.FastLane | None = None  # serves the plain port when built
        self.tls_server: asyncio.Server | None = None
        self.port = 0
        self.tls_port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False) -> None:
        loop = asyncio.get_running_loop()
        sock = _listen(host, port, reuse_port)
        self.port = sock.getsockname()[1]
        if self.config.lane and fastlane.available():
            self.lane = fastlane.FastLane(self, sock)
            self.counts = LaneCounts(self.lane.lane)
        else:
            self.server = await loop.create_server(lambda: RouterProtocol(self), sock=sock)
        if self.feed is not None:
            self.feed.start()

    async def start_tls(
        self, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False
    ) -> None:
        """The HTTPS port: `X-Forwarded-Proto: https`, certificates chosen by SNI."""
        assert self.certificates is not None, "HTTPS needs certificates"
        loop = asyncio.get_running_loop()
        sock = _listen(host, port, reuse_port)
        self.tls_port = tls_port = sock.getsockname()[1]
        self.tls_server = await loop.create_server(
            lambda: RouterProtocol(self, proto="https", port=tls_port),
            sock=sock,
            ssl=self.certificates.default,
            ssl_handshake_timeout=10.0,
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to `grace` s), close the rest."""
        for server in (self.server, self.tls_server):
            if server is not None:
                server.close()
        lane = self.lane
        if lane is not None:
            lane.shutdown()
        for conn in list(self.connections):
            conn.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (self.connections or (lane and lane.active())) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if lane is not None:
            lane.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self.feed is not None:
            await self.feed.close()
        self.pool.close()
        for server in (self.server, self.tls_server):
            if server is not None:
                await server.wait_closed()


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock
