"""Heroku's API rate limit: a GCRA token bucket per account (HEROKU_BEHAVIOUR §10.5)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

HOUR = 3600.0


class RateLimiter:
    """`limit` requests per hour per account, refilled smoothly (4500/h is 75 a minute).

    State is one "theoretical arrival time" per account, kept in memory by this object.

    Example::

        limiter = RateLimiter(4500)
        allowed, remaining = limiter.take(user_id)
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._interval = HOUR / limit
        self._burst = HOUR  # limit * interval
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, account: str) -> tuple[bool, int]:
        """Spend one request; answers whether it is allowed and how many remain."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat.get(account, now), now)
            new_tat = tat + self._interval
            if new_tat - now > self._burst:
                return False, self._remaining(tat, now)
            self._tat[account] = new_tat
            return True, self._remaining(new_tat, now)

    def remaining(self, account: str) -> int:
        with self._lock:
            now = self._clock()
            return self._remaining(max(self._tat.get(account, now), now), now)

    def _remaining(self, tat: float, now: float) -> int:
        return max(0, math.floor((self._burst - (tat - now)) / self._interval + 1e-9))
