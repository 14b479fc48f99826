"""Router: the listening socket, the route table, the feed and the backend pool, together."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable

from kiku.router.backend import BackendPool
from kiku.router.config import RouterConfig
from kiku.router.feed import RouteFeed
from kiku.router.protocol import RouterProtocol
from kiku.router.table import RouteTable


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
    ) -> None:
        self.config = config if config is not None else RouterConfig()
        self.table = table if table is not None else RouteTable()
        self.pool = BackendPool(idle_timeout=self.config.backend_idle_timeout)
        self.log = log if log is not None else stdout_log
        self.feed = RouteFeed(routes_socket, self.table) if routes_socket else None
        self.connections: set[RouterProtocol] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.server = await loop.create_server(lambda: RouterProtocol(self), sock=sock)
        if self.feed is not None:
            self.feed.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to `grace` s), close the rest."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self.feed is not None:
            await self.feed.close()
        self.pool.close()
        if self.server is not None:
            await self.server.wait_closed()
