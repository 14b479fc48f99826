"""AppCounts: per app, on one router process, its client connections (H22) and its
requests in flight or held for a dyno (H11). Routers do not coordinate, as Heroku's.

The one count both of a router's paths keep: with the fast lane, the numbers live in the
lane (C), which checks them per request itself, and the Python path adds to the same ones.
"""

from __future__ import annotations

from typing import Protocol


class _LaneCounter(Protocol):
    def count(self, app_id: bytes, connections: int, backlog: int) -> tuple[int, int]: ...


class AppCounts:
    """Counted here, in dicts, when the router has no fast lane."""

    def __init__(self) -> None:
        self._connections: dict[str, int] = {}
        self._backlog: dict[str, int] = {}

    def connections(self, app_id: str) -> int:
        return self._connections.get(app_id, 0)

    def backlog(self, app_id: str) -> int:
        return self._backlog.get(app_id, 0)

    def add(self, app_id: str, *, connections: int = 0, backlog: int = 0) -> None:
        for counts, delta in ((self._connections, connections), (self._backlog, backlog)):
            if delta:
                value = counts.get(app_id, 0) + delta
                if value > 0:
                    counts[app_id] = value
                else:
                    counts.pop(app_id, None)


class LaneCounts(AppCounts):
    """Counted in the fast lane, which serves most requests and checks them there."""

    def __init__(self, lane: _LaneCounter) -> None:
        super().__init__()
        self.lane = lane

    def connections(self, app_id: str) -> int:
        return self.lane.count(app_id.encode(), 0, 0)[0]

    def backlog(self, app_id: str) -> int:
        return self.lane.count(app_id.encode(), 0, 0)[1]

    def add(self, app_id: str, *, connections: int = 0, backlog: int = 0) -> None:
        self.lane.count(app_id.encode(), connections, backlog)
