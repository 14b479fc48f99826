"""The route table: which backends serve which host. The one owner of route state."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kiku.router.pages import page_url

UP, STARTING, CRASHED, NONE = "up", "starting", "crashed", "none"


@dataclass(frozen=True, slots=True)
class Backend:
    dyno: str
    address: str
    port: int


def affinity_token(app_id: str, backend: Backend) -> bytes:
    """The `heroku-session-affinity` cookie value pinning a client to `backend`: opaque,
    and the same in every router worker (no shared state needed)."""
    seed = f"{app_id} {backend.dyno} {backend.address}:{backend.port}".encode()
    return base64.urlsafe_b64encode(hashlib.sha256(seed).digest()[:16]).rstrip(b"=")


@dataclass(slots=True)
class Route:
    """One host's app: its backends (web dynos that are up) and what state it is in."""

    app: str
    app_id: str
    state: str = NONE
    maintenance: bool = False
    backends: tuple[Backend, ...] = ()
    # Labs http-session-affinity: a cookie pins each client to one dyno while it is up.
    affinity: bool = False
    # ERROR_PAGE_URL and MAINTENANCE_PAGE_URL: pages shown (in an iframe) instead of kiku's.
    error_page: str = ""
    maintenance_page: str = ""
    _next: int = field(default=0, repr=False, compare=False)
    _pins: dict[bytes, Backend] | None = field(default=None, repr=False, compare=False)

    def choose(self) -> Backend | None:
        """The next backend, round-robin; None when there is none."""
        if not self.backends:
            return None
        backend = self.backends[self._next % len(self.backends)]
        self._next += 1
        return backend

    def pinned(self, token: bytes) -> Backend | None:
        """The up backend an affinity cookie names, if it is still up."""
        return self._pinning().get(token)

    def token(self, backend: Backend) -> bytes:
        """The affinity cookie value for `backend`."""
        for token, pinned in self._pinning().items():
            if pinned == backend:
                return token
        return affinity_token(self.app_id, backend)

    def _pinning(self) -> dict[bytes, Backend]:
        if self._pins is None:
            self._pins = {affinity_token(self.app_id, b): b for b in self.backends}
        return self._pins


def parse_route(data: Mapping[str, Any]) -> Route:
    backends = tuple(
        Backend(str(b["dyno"]), str(b["address"]), int(b["port"])) for b in data.get("backends", ())
    )
    return Route(
        app=str(data.get("app", "")),
        app_id=str(data.get("app_id", "")),
        state=str(data.get("state", NONE)),
        maintenance=bool(data.get("maintenance", False)),
        backends=backends,
        affinity=bool(data.get("affinity", False)),
        error_page=page_url(str(data.get("error_page_url") or "")),
        maintenance_page=page_url(str(data.get("maintenance_page_url") or "")),
    )


class RouteTable:
    """Host → Route. Replaced whole by each snapshot; waiters hear about every change."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self._routes: dict[str, Route] = dict(routes or {})
        self._wildcards = any(host.startswith("*.") for host in self._routes)
        self._changed = asyncio.Event()
        self.version = 0
        self.listeners: list[Callable[[], None]] = []  # told after every replace()

    def lookup(self, host: str) -> Route | None:
        route = self._routes.get(host)
        if route is None and self._wildcards:
            _, dot, parent = host.partition(".")
            if dot:
                route = self._routes.get("*." + parent)
        return route

    def hosts(self) -> list[str]:
        return list(self._routes)

    def items(self) -> list[tuple[str, Route]]:
        return list(self._routes.items())

    def replace(self, routes: Mapping[str, Route]) -> None:
        """Take a new snapshot; round-robin positions carry over for unchanged hosts."""
        for host, route in routes.items():
            old = self._routes.get(host)
            if old is not None:
                route._next = old._next
        self._routes = dict(routes)
        self._wildcards = any(host.startswith("*.") for host in self._routes)
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for listener in self.listeners:
            listener()

    def apply_snapshot(self, message: Mapping[str, Any]) -> None:
        routes = message.get("routes", {})
        self.replace({str(h).lower(): parse_route(r) for h, r in routes.items()})

    async def wait_changed(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the next replace(); False on timeout."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True
