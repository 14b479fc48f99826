"""`GET /apps/{app}/metrics` (`kiku metrics`): router traffic and dyno memory per process
type, at one-minute resolution, for up to the last 24 hours. kiku's own resource: Heroku's
metrics come from a separate service with no Platform API shape to follow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from kiku.api.deps import DB, AppDep, PlatformDep
from kiku.errors import InvalidParams
from kiku.logs.metrics import RESOLUTION, RETENTION, Memory, Stats
from kiku.store.models import App

router = APIRouter()
DEFAULT_MINUTES = 60
FREE = "Metrics are not available for free dynos; scale to hobby or larger with kiku ps:type hobby"


@router.get("/apps/{app_identity}/metrics")
def get_metrics(
    app: AppDep,
    platform: PlatformDep,
    db: DB,
    process_type: str | None = None,
    minutes: str | None = None,
    since: str | None = None,
) -> dict[str, Any]:
    """The app's metrics per process type, one-minute buckets.

    Query: `process_type` (default: every type with a dyno or with data), and the window,
    either `minutes` (the last N minutes including the current one; default 60, at most
    1440) or `since` (an ISO 8601 time; at most 24 h ago). 422 for an app or process type
    on free dynos, which get no metrics.

    Answers::

        {"app": {"id": "…", "name": "myapp"},
         "since": "2026-11-28T22:01:00Z", "until": "2026-11-28T23:00:27Z",
         "resolution": 60,
         "process_types": [
           {"type": "web",
            "summary": STATS over the whole window,
            "series": [STATS of one minute, …]}]}       # minutes with data only, oldest first

    where STATS is::

        {"at": "2026-11-28T22:14:00Z",     # the start of its first minute
         "minutes": 1,
         "requests": 120, "throughput_rpm": 120.0,
         "response_time_ms": {"p50": 4, "p95": 18, "p99": 40},   # router service time
         "status": {"2xx": 118, "3xx": 0, "4xx": 1, "5xx": 1},
         "errors": {"H12": 1},                                    # at=error lines by code
         "memory_mb": {"rss": 21.5, "rss_max": 22.0, "total": 23.1, "total_max": 24.0,
                       "quota": 512.0}}                           # null without samples

    Percentiles are within ~3 % (see logs/histogram.py) and null without requests; memory
    is the mean (and the highest) of the dynos' 20-second samples.
    """
    formations = platform.apps.releases.formations.of_app(db, app)
    sizes = {f.type: f.size.lower() for f in formations}
    if process_type is not None and sizes.get(process_type) == "free":
        raise InvalidParams(FREE)
    if process_type is None and "free" in sizes.values():
        raise InvalidParams(FREE)
    now = platform.clock()
    start = _since(now, minutes, since)
    reports = platform.metrics.report(app.id, start, now, process_type)
    running = {f.type for f in formations if f.quantity > 0}
    types = {process_type} if process_type is not None else running | reports.keys()
    listed = []
    for kind in sorted(types):
        report = reports.get(kind)
        summary = report.summary if report else platform.metrics.empty(start, now)
        series = report.series if report else []
        listed.append(
            {
                "type": kind,
                "summary": stats_view(summary),
                "series": [stats_view(s) for s in series],
            }
        )
    return {
        "app": _app_ref(app),
        "since": _iso(platform.metrics.window(start, now)[0] * RESOLUTION),
        "until": _iso(now),
        "resolution": RESOLUTION,
        "process_types": listed,
    }


def stats_view(stats: Stats) -> dict[str, Any]:
    return {
        "at": _iso(stats.at),
        "minutes": stats.minutes,
        "requests": stats.requests,
        "throughput_rpm": round(stats.throughput_rpm, 2),
        "response_time_ms": stats.response_ms,
        "status": stats.statuses,
        "errors": stats.errors,
        "memory_mb": _memory_view(stats.memory),
    }


def _memory_view(memory: Memory | None) -> dict[str, float] | None:
    if memory is None:
        return None
    return {
        "rss": _mb(memory.rss),
        "rss_max": _mb(memory.rss_max),
        "total": _mb(memory.total),
        "total_max": _mb(memory.total_max),
        "quota": _mb(memory.quota),
    }


def _mb(size: int) -> float:
    return round(size / 2**20, 2)


def _since(now: float, minutes: str | None, since: str | None) -> float:
    if minutes is not None and since is not None:
        raise InvalidParams("Give either minutes or since, not both.")
    if since is not None:
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidParams(
                f"since must be an ISO 8601 time like 2026-11-28T22:00:00Z, not {since!r}."
            ) from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(moment.timestamp(), now - RETENTION * RESOLUTION)
    count = DEFAULT_MINUTES
    if minutes is not None:
        count = int(minutes) if minutes.isdigit() else 0
        if not 1 <= count <= RETENTION:
            raise InvalidParams(f"minutes must be a whole number from 1 to {RETENTION}.")
    return now - (count - 1) * RESOLUTION


def _app_ref(app: App) -> dict[str, str]:
    return {"id": app.id, "name": app.name}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
