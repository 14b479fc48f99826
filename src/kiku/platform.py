"""`Platform`: the long-lived parts of one kiku, built once from settings and handed around."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kiku.accounts.accounts import Accounts
from kiku.accounts.ratelimit import RateLimiter
from kiku.apps.registry import AppRegistry
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

        return cls(
            settings=settings,
            store=store,
            accounts=Accounts(store, clock),
            apps=AppRegistry(now, apps_per_account=settings.apps_per_account),
            limiter=RateLimiter(settings.rate_limit_per_hour, clock),
            login_limiter=RateLimiter(LOGINS_PER_HOUR, clock),
            clock=clock,
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def close(self) -> None:
        self.store.close()
