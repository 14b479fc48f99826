"""`/apps/{app}/log-drains`: where an app's log stream is also sent (`kiku drains`).

A drain is found by id, token or URL; URLs have slashes, so the official CLI sends them
percent-encoded in one segment (decoded again before routing, hence `:path`). URLs may
carry credentials: the API gives them back to the app's members (as Heroku does), and
everything else (the app's `app[api]` lines, kiku's own log) shows them `redact`ed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kiku.api.deps import DB, AppDep, CallerDep, PlatformDep
from kiku.api.routes.common import listed
from kiku.api.views import iso
from kiku.errors import InvalidParams, NotFound
from kiku.logs.drain_urls import parse_drain_url, redact
from kiku.logs.drains import MAX_PER_APP, DrainSpec, new_token
from kiku.store.models import App, LogDrain

router = APIRouter()


class LogDrainCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str


def log_drain_view(row: LogDrain, app: App) -> dict[str, Any]:
    return {
        "addon": None,
        "app": {"id": app.id, "name": app.name},
        "created_at": iso(row.created_at),
        "id": row.id,
        "token": row.token,
        "updated_at": iso(row.updated_at),
        "url": row.url,
    }


def _drains(db: Session, app: App) -> list[LogDrain]:
    query = select(LogDrain).where(LogDrain.app_id == app.id)
    return list(db.scalars(query.order_by(LogDrain.created_at, LogDrain.id)))


def _find(db: Session, app: App, identity: str) -> LogDrain:
    row = db.scalar(
        select(LogDrain).where(
            LogDrain.app_id == app.id,
            or_(LogDrain.id == identity, LogDrain.token == identity, LogDrain.url == identity),
        )
    )
    if row is None:
        raise NotFound("Couldn't find that log drain.", resource="log-drain")
    return row


@router.get("/apps/{app_identity}/log-drains")
async def list_log_drains(
    request: Request, app: AppDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    keys = {"id": lambda d: d["id"], "url": lambda d: d["url"], "token": lambda d: d["token"]}
    views = [log_drain_view(row, app) for row in _drains(db, app)]
    return listed(request, views, keys, platform.settings.page_size)


@router.post("/apps/{app_identity}/log-drains", status_code=201)
def add_log_drain(
    body: LogDrainCreate, app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    target = parse_drain_url(body.url)
    taken = db.scalar(select(LogDrain).where(LogDrain.app_id == app.id, LogDrain.url == body.url))
    if taken is not None:
        raise InvalidParams(f"The drain {target.redacted()} is already added to {app.name}.")
    count = db.scalar(select(func.count()).select_from(LogDrain).where(LogDrain.app_id == app.id))
    if (count or 0) >= MAX_PER_APP:
        raise InvalidParams(
            f"{app.name} has {MAX_PER_APP} log drains, the most an app may; "
            "remove one first (kiku drains:remove)."
        )
    now = platform.now()
    row = LogDrain(app_id=app.id, url=body.url, token=new_token(), created_at=now, updated_at=now)
    db.add(row)
    db.flush()
    platform.drains.add(DrainSpec.of(row))
    platform.events.api(app.id, f"Add drain {target.redacted()}", caller.user)
    return log_drain_view(row, app)


@router.get("/apps/{app_identity}/log-drains/{drain_identity:path}")
async def get_log_drain(drain_identity: str, app: AppDep, db: DB) -> dict[str, Any]:
    return log_drain_view(_find(db, app, drain_identity), app)


@router.delete("/apps/{app_identity}/log-drains/{drain_identity:path}")
def remove_log_drain(
    drain_identity: str, app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    row = _find(db, app, drain_identity)
    view = log_drain_view(row, app)
    db.delete(row)
    db.flush()
    platform.drains.remove(row.id)
    platform.events.api(app.id, f"Remove drain {redact(row.url)}", caller.user)
    return view
