"""`/apps/{app}/formation` (scaling, sizes) and `/apps/{app}/dynos` (what runs, restarts).

The API only writes desired state; the dyno manager makes it so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.api.deps import DB, AppDep, Caller, CallerDep, PlatformDep
from kiku.api.views import dyno_view, formation_view
from kiku.dynos.formation import Change
from kiku.dynos.sizes import size_named
from kiku.errors import NotFound
from kiku.platform import Platform
from kiku.store.models import App, Dyno

router = APIRouter()


class DynoSizeRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str


class FormationUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str | None = None
    quantity: int | str | None = None
    size: str | None = None
    dyno_size: DynoSizeRef | None = None

    def change(self, kind: str) -> Change:
        size = self.size or (self.dyno_size.name if self.dyno_size else None)
        return Change(kind, self.quantity, size)


class FormationBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    updates: list[FormationUpdate]


def _views(
    platform: Platform, db: Session, app: App, formations: list[Any]
) -> list[dict[str, Any]]:
    slug = platform.apps.releases.current_slug(db, app)
    commands = dict(slug.process_types) if slug else {}
    return [formation_view(f, app, commands.get(f.type)) for f in formations]


@router.get("/apps/{app_identity}/formation")
async def list_formation(app: AppDep, platform: PlatformDep, db: DB) -> list[dict[str, Any]]:
    return _views(platform, db, app, platform.apps.releases.formations.of_app(db, app))


@router.get("/apps/{app_identity}/formation/{kind}")
async def get_formation(kind: str, app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    formation = platform.apps.releases.formations.get(db, app, kind)
    return _views(platform, db, app, [formation])[0]


@router.patch("/apps/{app_identity}/formation/{kind}")
def update_formation(
    kind: str, body: FormationUpdate, app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    changed = platform.apps.releases.formations.apply(db, app, [body.change(kind)])
    _scaled(platform, db, app, caller)
    return _views(platform, db, app, changed)[0]


@router.patch("/apps/{app_identity}/formation")
def update_formations(
    body: FormationBatch, app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB
) -> list[dict[str, Any]]:
    changes = [u.change(u.type or "") for u in body.updates]
    changed = platform.apps.releases.formations.apply(db, app, changes)
    _scaled(platform, db, app, caller)
    return _views(platform, db, app, changed)


def _scaled(platform: Platform, db: Session, app: App, caller: Caller) -> None:
    """`app[api]: Scaled to web@2:Standard-1X worker@0:Standard-1X by user ...`."""
    formation = platform.apps.releases.formations.of_app(db, app)
    sizes = " ".join(f"{f.type}@{f.quantity}:{size_named(f.size).name}" for f in formation)
    platform.events.api(app.id, f"Scaled to {sizes}", caller.user)


def _dynos(db: Session, app: App) -> list[Dyno]:
    return list(db.scalars(select(Dyno).where(Dyno.app_id == app.id).order_by(Dyno.name)))


def _dyno(db: Session, app: App, identity: str) -> Dyno:
    for dyno in _dynos(db, app):
        if identity in (dyno.name, dyno.id):
            return dyno
    raise NotFound(f"Couldn't find that dyno ({identity}).", resource="dyno")


@router.get("/apps/{app_identity}/dynos")
async def list_dynos(app: AppDep, db: DB) -> list[dict[str, Any]]:
    return [dyno_view(d, app) for d in _dynos(db, app)]


@router.get("/apps/{app_identity}/dynos/{identity}")
async def get_dyno(identity: str, app: AppDep, db: DB) -> dict[str, Any]:
    return dyno_view(_dyno(db, app, identity), app)


@router.delete("/apps/{app_identity}/dynos", status_code=202)
def restart_all(app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    platform.apps.releases.formations.request_restart(db, app)
    return {}


@router.delete("/apps/{app_identity}/dynos/{identity}", status_code=202)
def restart_dyno(identity: str, app: AppDep, db: DB) -> dict[str, Any]:
    _dyno(db, app, identity).restart_requested = True
    return {}


@router.delete("/apps/{app_identity}/formations/{kind}", status_code=202)
def restart_type(kind: str, app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    formations = platform.apps.releases.formations
    formations.get(db, app, kind)
    formations.request_restart(db, app, kind)
    return {}


@router.post("/apps/{app_identity}/dynos/{identity}/actions/stop", status_code=202)
def stop_dyno(identity: str, app: AppDep, db: DB) -> dict[str, Any]:
    _dyno(db, app, identity).stop_requested = True
    return {}


@router.post("/apps/{app_identity}/formations/{kind}/actions/stop", status_code=202)
def stop_type(kind: str, app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    platform.apps.releases.formations.get(db, app, kind)
    for dyno in _dynos(db, app):
        if dyno.type == kind:
            dyno.stop_requested = True
    return {}
