"""`RouteFeed`: serves the route table to router processes over a local socket.

Each router connects to `<data_dir>/run/routes.sock` and reads JSON lines, each a full
snapshot (kiku.router.feed reads them):

    {"type": "snapshot", "routes": {"myapp.localhost": {"app": "myapp", "app_id": "...",
     "maintenance": false, "state": "up",
     "backends": [{"dyno": "web.1", "address": "10.213.0.2", "port": 5000}]}},
     "certs": {"www.example.com": "/data/tls/sni/<endpoint id>-<hash>.pem"}}

A route may also carry `"affinity": true` (labs http-session-affinity) and the app's
`"error_page_url"` / `"maintenance_page_url"` (its ERROR_PAGE_URL, MAINTENANCE_PAGE_URL).

An app's custom domains (`kiku domains:add`, maybe `*.example.com`) map to the same route
as its default host. A new snapshot goes out whenever the table changes; the router keeps
its last one while the control plane is away, so a control-plane restart drops no request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.apps.certs import covers, describe
from kiku.apps.features import HTTP_SESSION_AFFINITY
from kiku.store import Store
from kiku.store.models import App, Domain, Dyno, Formation, SniEndpoint


def snapshot(
    store: Store, host_for: Callable[[str], str], cert_dir: Path | None = None
) -> dict[str, Any]:
    """Every app's host, its up web dynos and what state its web process is in; with a
    `cert_dir`, also each custom domain's certificate file (written there)."""
    routes: dict[str, Any] = {}
    certs: dict[str, str] = {}
    with store.session() as db:
        dynos: dict[str, list[Dyno]] = {}
        query = select(Dyno).where(Dyno.type == "web", Dyno.one_off.is_(False))
        for dyno in db.scalars(query.order_by(Dyno.name)):
            dynos.setdefault(dyno.app_id, []).append(dyno)
        wanted = {
            f.app_id: f.quantity
            for f in db.scalars(select(Formation).where(Formation.type == "web"))
        }
        custom: dict[str, list[str]] = {}
        for domain in db.scalars(select(Domain).order_by(Domain.hostname)):
            custom.setdefault(domain.app_id, []).append(domain.hostname)
        if cert_dir is not None:
            certs = _certificates(db, cert_dir)
        for app in db.scalars(select(App)):
            web = dynos.get(app.id, [])
            up = [d for d in web if d.state == "up" and d.address and d.port]
            route = {
                "app": app.name,
                "app_id": app.id,
                "maintenance": app.maintenance,
                "state": _state(web, up, wanted.get(app.id, 0)),
                "backends": [{"dyno": d.name, "address": d.address, "port": d.port} for d in up],
                **_extras(app),
            }
            routes[host_for(app.name)] = route
            for hostname in custom.get(app.id, ()):
                routes[hostname] = route
    return {"type": "snapshot", "routes": routes, "certs": certs}


def _certificates(db: Session, cert_dir: Path) -> dict[str, str]:
    """Custom hostname -> certificate file: the domain's own SNI endpoint, else one of its
    app's endpoints that covers it; domains without either get kiku's default."""
    endpoints: dict[str, list[SniEndpoint]] = {}
    for endpoint in db.scalars(select(SniEndpoint).order_by(SniEndpoint.created_at)):
        endpoints.setdefault(endpoint.app_id, []).append(endpoint)
    if not endpoints:
        return {}
    names = {e.id: describe(e.certificate_chain).domains for es in endpoints.values() for e in es}
    certs: dict[str, str] = {}
    for domain in db.scalars(select(Domain).where(Domain.app_id.in_(endpoints))):
        candidates = endpoints[domain.app_id]
        chosen = next((e for e in candidates if e.id == domain.sni_endpoint_id), None)
        if chosen is None:
            chosen = next((e for e in candidates if covers(names[e.id], domain.hostname)), None)
        if chosen is not None:
            certs[domain.hostname] = str(_cert_file(cert_dir, chosen))
    return certs


def _cert_file(cert_dir: Path, endpoint: SniEndpoint) -> Path:
    """The chain and key in one 0600 file, named by content: routers reload on a new name."""
    data = f"{endpoint.certificate_chain.strip()}\n{endpoint.private_key.strip()}\n".encode()
    path = cert_dir / f"{endpoint.id}-{hashlib.sha256(data).hexdigest()[:16]}.pem"
    if not path.exists():
        cert_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        partial.replace(path)
    return path


def prune_cert_files(cert_dir: Path, keep: Collection[str]) -> None:
    """Remove certificate files no snapshot names any more (removed or replaced certs)."""
    if not cert_dir.is_dir():
        return
    for path in cert_dir.glob("*.pem"):
        if str(path) not in keep:
            path.unlink(missing_ok=True)


def _extras(app: App) -> dict[str, Any]:
    """What only some apps have: session affinity and their own error and maintenance
    pages (config vars, as on Heroku)."""
    extras: dict[str, Any] = {}
    if HTTP_SESSION_AFFINITY in (app.features or []):
        extras["affinity"] = True
    config = app.config or {}
    for var, key in (
        ("ERROR_PAGE_URL", "error_page_url"),
        ("MAINTENANCE_PAGE_URL", "maintenance_page_url"),
    ):
        if config.get(var):
            extras[key] = str(config[var])
    return extras


def _state(web: list[Dyno], up: list[Dyno], quantity: int) -> str:
    if up:
        return "up"
    if quantity == 0 and not web:
        return "none"
    if any(d.state == "starting" for d in web) or (quantity and not web):
        return "starting"
    return "crashed" if web else "none"


class RouteFeed:
    """A server part: the feed socket, re-reading the store every `interval` seconds."""

    name = "route-feed"

    def __init__(
        self,
        store: Store,
        socket_path: Path,
        host_for: Callable[[str], str],
        interval: float = 0.1,
        *,
        cert_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.socket_path = socket_path
        self.host_for = host_for
        self.interval = interval
        # Custom domains' certificates, as files routers load (the feed carries names only).
        self.cert_dir = cert_dir
        self._stopped = asyncio.Event()
        self._current = b""
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        self.socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._current = await self._read()
        server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        async with server:
            while not self._stopped.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), timeout=self.interval)
                latest = await self._read()
                if latest != self._current:
                    self._current = latest
                    async with self._changed:
                        self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def stop(self) -> None:
        self._stopped.set()

    async def _read(self) -> bytes:
        return await asyncio.to_thread(self._snapshot)

    def _snapshot(self) -> bytes:
        table = snapshot(self.store, self.host_for, self.cert_dir)
        data = json.dumps(table, sort_keys=True).encode() + b"\n"
        if self.cert_dir is not None and data != self._current:
            prune_cert_files(self.cert_dir, set(table["certs"].values()))
        return data

    async def _serve(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = b""
        try:
            while not self._stopped.is_set():
                if self._current != sent:
                    sent = self._current
                    writer.write(sent)
                    await writer.drain()
                async with self._changed:
                    await self._changed.wait()
        except ConnectionError:
            pass
        finally:
            writer.close()
