"""`/apps` and `/users/{id}/apps`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from kiku.api.deps import DB, AppDep, CallerDep, PlatformDep
from kiku.api.ranges import paginate_query, parse_range
from kiku.api.routes.common import page_response
from kiku.api.views import app_view
from kiku.apps.registry import DEFAULT_REGION, DEFAULT_STACK, visible_to
from kiku.errors import InvalidParams, NotFound
from kiku.store.models import App, Slug

router = APIRouter()


class AppCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    region: str | None = None
    stack: str | None = None


class AppUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    maintenance: bool | None = None
    build_stack: str | None = None


def _check_choice(kind: str, value: str | None, known: str) -> None:
    if value is not None and value != known:
        raise InvalidParams(f"Unknown {kind} {value!r}; this kiku offers {known!r}.")


@router.post("/apps", status_code=201)
def create_app_(
    caller: CallerDep, platform: PlatformDep, db: DB, body: AppCreate | None = None
) -> dict[str, Any]:
    body = body or AppCreate()
    _check_choice("region", body.region, DEFAULT_REGION)
    _check_choice("stack", body.stack, DEFAULT_STACK)
    app = platform.apps.create(db, caller.user, body.name)
    return app_view(app, platform.settings)


async def _list_apps(
    request: Request, caller: CallerDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    columns = {"id": App.id, "name": App.name}
    rng = parse_range(request.headers.get("range"), list(columns), platform.settings.page_size)
    page = paginate_query(db, visible_to(caller.user), rng, columns)
    return page_response(page, [app_view(app, platform.settings) for app in page.items])


@router.get("/apps")
async def list_apps(
    request: Request, caller: CallerDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    return await _list_apps(request, caller, platform, db)


@router.get("/users/{user_identity}/apps")
async def list_user_apps(
    user_identity: str, request: Request, caller: CallerDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    if user_identity not in ("~", caller.user.id, caller.user.email):
        raise NotFound("Couldn't find that user.", resource="user")
    return await _list_apps(request, caller, platform, db)


@router.get("/apps/{app_identity}")
async def get_app(app: AppDep, platform: PlatformDep) -> dict[str, Any]:
    return app_view(app, platform.settings)


@router.patch("/apps/{app_identity}")
def update_app(
    body: AppUpdate, app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    _check_choice("stack", body.build_stack, DEFAULT_STACK)
    if body.name is not None and body.name != app.name:
        platform.apps.require_owner(app, caller.user, "rename it")
        platform.apps.rename(db, app, body.name)
    if body.maintenance is not None and body.maintenance != app.maintenance:
        app.maintenance = body.maintenance
        app.updated_at = platform.now()
    return app_view(app, platform.settings)


@router.delete("/apps/{app_identity}")
def destroy_app(app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    platform.apps.require_owner(app, caller.user, "destroy it")
    view = app_view(app, platform.settings)
    slugs = [slug.blob_key for slug in db.scalars(select(Slug).where(Slug.app_id == app.id))]
    platform.apps.destroy(db, app)
    # Its repository, build cache and slugs go with it; nothing else refers to them.
    platform.repos.remove(app.id)
    platform.compiler.purge_cache(app.id)
    platform.logplex.forget(app.id)
    platform.metrics.forget(app.id)
    for key in slugs:
        platform.blobs.delete(key)
    return view
