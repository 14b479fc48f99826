"""`Platform`: the long-lived parts of one kiku, built once from settings and handed around."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kiku.accounts.accounts import Accounts
from kiku.accounts.ratelimit import RateLimiter
from kiku.apps.registry import AppRegistry
from kiku.build.blobs import BlobStore
from kiku.build.compiler import CompileLimits, SlugCompiler
from kiku.events import AppEvents
from kiku.git.repos import Repos
from kiku.logs.drains import Drains
from kiku.logs.logplex import Logplex
from kiku.logs.metrics import Metrics
from kiku.logs.sessions import LogSessions
from kiku.settings import Settings
from kiku.store import Store

# Failed and successful password logins per email per hour, before 429: slows guessing.
LOGINS_PER_HOUR = 30


@dataclass
class Platform:
    """The parts the API (and later git, builder, dyno manager) share.

    Example::

        platform = Platform.build(settings)
        app = create_app(platform)
    """

    settings: Settings
    store: Store
    accounts: Accounts
    apps: AppRegistry
    limiter: RateLimiter
    login_limiter: RateLimiter
    clock: Callable[[], float]
    repos: Repos
    blobs: BlobStore
    compiler: SlugCompiler
    logplex: Logplex
    metrics: Metrics
    events: AppEvents
    log_sessions: LogSessions
    drains: Drains

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Callable[[], float] = time.time, upgrade: bool = True
    ) -> Platform:
        # 0700: the store holds TOTP secrets and token hashes.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = Store(settings.sqlalchemy_url)
        if upgrade:
            store.upgrade()

        def now() -> datetime:
            return datetime.fromtimestamp(clock(), UTC)

        logplex = Logplex(settings.data_dir / "logs" / "apps", clock=clock)
        events = AppEvents(logplex)
        metrics = Metrics(settings.data_dir / "logs" / "metrics", clock=clock)
        logplex.watch(metrics)

        return cls(
            settings=settings,
            store=store,
            accounts=Accounts(store, clock),
            apps=AppRegistry(now, apps_per_account=settings.apps_per_account, events=events),
            limiter=RateLimiter(settings.rate_limit_per_hour, clock),
            login_limiter=RateLimiter(LOGINS_PER_HOUR, clock),
            clock=clock,
            repos=Repos(settings.data_dir / "repos"),
            blobs=BlobStore(settings.data_dir / "blobs"),
            compiler=SlugCompiler(
                settings.data_dir / "cache",
                uv=find_uv(),
                stack_dir=settings.stack_dir,
                limits=CompileLimits(
                    timeout=settings.build_timeout,
                    memory_bytes=settings.build_memory_mb * 1024 * 1024,
                ),
            ),
            logplex=logplex,
            metrics=metrics,
            events=events,
            log_sessions=LogSessions(settings.data_dir / "logs" / "session.key", clock),
            drains=Drains(
                logplex,
                store,
                ca_file=settings.drain_ca_file,
                private_ok=settings.drain_allow_private,
            ),
        )

    @property
    def tls_dir(self) -> Path:
        return self.settings.data_dir / "tls"

    @property
    def build_socket(self) -> Path:
        """Where pre-receive hooks reach the builder (kiku.git.receiver)."""
        return self.settings.data_dir / "run" / "build.sock"

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def close(self) -> None:
        self.drains.stop()
        self.logplex.flush()
        self.store.close()


def find_uv() -> Path | None:
    """uv for the Python buildpack: the one installed beside kiku, else one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return beside
    found = shutil.which("uv")
    return Path(found) if found else None
