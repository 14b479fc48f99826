"""The route-feed client: reads JSON snapshot lines from the control plane's unix socket.

The router keeps serving its last table while the socket is down and reconnects with
backoff (0.1 s doubling to 2 s); the first snapshot after a reconnect replaces the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable

from kiku.router.table import RouteTable
from kiku.router.tls import Certificates


class RouteFeed:
    def __init__(
        self,
        path: str,
        table: RouteTable,
        *,
        min_backoff: float = 0.1,
        max_backoff: float = 2.0,
        warn: Callable[[str], None] | None = None,
        certificates: Certificates | None = None,
    ) -> None:
        self.path = path
        self.table = table
        self.certificates = certificates
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._warn = warn if warn is not None else _stderr
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.snapshots = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        backoff = self.min_backoff
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.path, limit=64 << 20)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self.connected.set()
            try:
                if await self._read(reader):
                    backoff = self.min_backoff
            finally:
                self.connected.clear()
                writer.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _read(self, reader: asyncio.StreamReader) -> bool:
        got_one = False
        while True:
            try:
                line = await reader.readline()
            except (OSError, ValueError):
                return got_one
            if not line:
                return got_one
            try:
                message = json.loads(line)
                if message.get("type") == "snapshot":
                    if self.certificates is not None:
                        self.certificates.apply(message.get("certs", {}))
                    self.table.apply_snapshot(message)
                    self.snapshots += 1
                    got_one = True
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                self._warn(f"route feed: bad snapshot ignored: {exc}")


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
