"""`kiku server`: builds the platform's parts from settings, runs and supervises them.

Today the parts are the API (which also serves git later); the git receiver's builder,
dyno manager, router and logplex join as `Part`s. If any part stops on its own, the
server stops them all and exits non-zero, so a supervisor (systemd, `make run`) sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Protocol

import uvicorn

from kiku.api import create_app
from kiku.errors import KikuError
from kiku.platform import Platform
from kiku.settings import Settings

log = logging.getLogger("kiku.server")


class PortInUse(KikuError):
    exit_code = 2


class Part(Protocol):
    """One long-running piece of the platform."""

    name: str

    async def run(self) -> None:
        """Serve until `stop()` is called; returning earlier means the part failed."""

    def stop(self) -> None:
        """Ask the part to finish; `run()` returns soon after."""


class _QuietSignalsServer(uvicorn.Server):
    """uvicorn without its own signal handling: the platform's server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int, option: str = "--api-port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(
            f"Cannot listen on {host}:{port} ({exc.strerror}); is another kiku server running? "
            f"Choose another port with {option}."
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class ApiPart:
    """The Platform API on uvicorn (uvloop and httptools)."""

    name = "api"

    def __init__(self, platform: Platform) -> None:
        settings = platform.settings
        self._socket = bind(settings.api_host, settings.api_port)
        config = uvicorn.Config(
            create_app(platform),
            loop="none",
            http="httptools",
            lifespan="on",
            log_config=None,
            server_header=False,
            # One log line per API call costs ~10% of a request; the API's own events go to
            # the app's log stream (logplex) instead, without tokens or bodies.
            access_log=False,
            proxy_headers=False,
        )
        self._server = _QuietSignalsServer(config)

    async def run(self) -> None:
        await self._server.serve(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return self._server.started


def default_parts(platform: Platform) -> list[Part]:
    from kiku.build.builder import Builder
    from kiku.git.receiver import PushReceiver
    from kiku.logs.drains import DrainsPart
    from kiku.logs.metrics import MetricsPart
    from kiku.logs.part import LogplexPart

    builder = Builder(platform, platform.compiler, platform.blobs)
    parts: list[Part] = [PushReceiver(builder, platform.build_socket), ApiPart(platform)]
    logs: list[Part] = [
        LogplexPart(platform.logplex, platform.settings),
        DrainsPart(platform.drains),
        MetricsPart(platform.metrics),
    ]
    return logs + dyno_parts(platform) + routing_parts(platform) + parts


def routing_parts(platform: Platform) -> list[Part]:
    """The route feed, and the router process it feeds (which outlives kiku server)."""
    from kiku.routing.feed import RouteFeed
    from kiku.routing.processes import RouterProcesses
    from kiku.tls import LocalCA

    settings = platform.settings
    run_dir = settings.data_dir / "run"
    routes = run_dir / "routes.sock"
    # The HTTPS port's own certificate, for every APP.DOMAIN, from kiku's local CA.
    domain = settings.domain.lower()
    cert, key = LocalCA(platform.tls_dir).issue(f"router-{domain}", (f"*.{domain}", domain))
    return [
        RouteFeed(platform.store, routes, settings.web_host, cert_dir=platform.tls_dir / "sni"),
        RouterProcesses(
            run_dir,
            settings.data_dir / "logs" / "router.log",
            host=settings.router_host,
            port=settings.router_port,
            routes_socket=routes,
            tls_port=settings.router_tls_port,
            tls_cert=cert,
            tls_key=key,
            workers=settings.router_workers,
        ),
    ]


def dyno_parts(platform: Platform) -> list[Part]:
    """The dyno manager on the local sandbox backend and the rendezvous for attached
    one-offs; none (said loudly) where this host cannot run sandboxes: the API and builds
    still work, dynos do not start."""
    from kiku.dynos.backends.local import LocalBackend
    from kiku.dynos.manager import DynoManager
    from kiku.dynos.part import DynoManagerPart
    from kiku.dynos.rendezvous import RendezvousPart, Secrets, server_context
    from kiku.logs.dynologs import DynoLogFollower
    from kiku.logs.part import DynoLogsPart
    from kiku.logs.runtime_metrics import RuntimeMetricsPart
    from kiku.tls import LocalCA

    settings = platform.settings
    try:
        backend = LocalBackend.from_settings(settings)
    except (KikuError, OSError) as exc:
        log.error("dynos cannot run on this host (%s); apps will not start", exc)
        return []
    ca = LocalCA(platform.tls_dir)
    ca.ensure()
    rendezvous = RendezvousPart(
        platform.store,
        backend,
        Secrets(platform.tls_dir / "rendezvous.key"),
        server_context(ca.cert, ca.key),
        bind(settings.api_host, settings.rendezvous_port, "--rendezvous-port"),
    )
    follower = DynoLogFollower(backend.root, platform.logplex)
    backend.before_remove = lambda handle: follower.finish(handle.dyno_id)
    manager = DynoManager(platform.store, backend, platform.blobs, app_events=platform.events)
    return [
        DynoManagerPart(manager),
        rendezvous,
        DynoLogsPart(follower),
        RuntimeMetricsPart.on(platform, backend),
    ]


class Server:
    """Runs the parts together and stops them together (SIGINT, SIGTERM, or a part failing)."""

    def __init__(
        self,
        settings: Settings,
        *,
        parts: Callable[[Platform], list[Part]] | None = None,
        on_ready: Callable[[Settings], None] | None = None,
    ) -> None:
        self.settings = settings
        self._make_parts = parts or default_parts
        self._on_ready = on_ready
        self._stopping = asyncio.Event()

    async def serve(self) -> int:
        """Run until told to stop; answers the process exit code."""
        platform = Platform.build(self.settings)
        try:
            parts = self._make_parts(platform)
            return await self._supervise(parts)
        finally:
            platform.close()

    async def _supervise(self, parts: list[Part]) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        tasks = {asyncio.create_task(part.run(), name=part.name): part for part in parts}
        stopping: asyncio.Task[object] = asyncio.create_task(self._stopping.wait())
        await self._announce(parts)
        waiting: set[asyncio.Task[object]] = {stopping, *tasks}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        failed = [part.name for task, part in tasks.items() if task in done]
        if failed:
            log.error("part %s stopped unexpectedly; shutting kiku down", ", ".join(failed))
        for part in parts:
            part.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        stopping.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("kiku stopped")
        return 1 if failed else 0

    async def _announce(self, parts: list[Part]) -> None:
        for _ in range(500):
            if all(getattr(part, "started", True) for part in parts) or self._stopping.is_set():
                break
            await asyncio.sleep(0.01)
        if self._on_ready and not self._stopping.is_set():
            self._on_ready(self.settings)

    def stop(self) -> None:
        self._stopping.set()


def run(settings: Settings, on_ready: Callable[[Settings], None] | None = None) -> int:
    """Run the platform in this process until a signal; uvloop when it is installed."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        loop_factory = asyncio.new_event_loop
    server = Server(settings, on_ready=on_ready)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(server.serve())
