"""`/apps/{app}/releases`: the numbered history of an app, and rollbacks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from kiku.api.deps import DB, AppDep, CallerDep, PlatformDep
from kiku.api.ranges import paginate_query, parse_range
from kiku.api.routes.common import page_response
from kiku.api.views import release_view
from kiku.errors import InvalidParams, NotFound
from kiku.store.models import Release, Slug

router = APIRouter()


class ReleaseCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    release: str | None = None
    slug: str | None = None
    description: str | None = None


@router.get("/apps/{app_identity}/releases")
async def list_releases(
    request: Request, app: AppDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    columns = {"version": Release.version, "id": Release.id}
    rng = parse_range(request.headers.get("range"), list(columns), platform.settings.page_size)
    query = select(Release).where(Release.app_id == app.id)
    page = paginate_query(db, query, rng, columns, convert=_version_or_text)
    current = platform.apps.releases.current(db, app)
    current_id = current.id if current else None
    items = [
        release_view(r, app, platform.settings, current=r.id == current_id) for r in page.items
    ]
    return page_response(page, items)


def _version_or_text(value: str) -> int | str:
    return int(value) if value.isdigit() else value


@router.get("/apps/{app_identity}/releases/{release_identity}")
async def get_release(
    release_identity: str, app: AppDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    release = platform.apps.releases.find(db, app, release_identity)
    current = platform.apps.releases.current(db, app)
    return release_view(release, app, platform.settings, current=current is release)


@router.get("/apps/{app_identity}/releases/{release_identity}/config-vars")
async def get_release_config_vars(
    release_identity: str, app: AppDep, platform: PlatformDep, db: DB
) -> dict[str, str]:
    return dict(platform.apps.releases.find(db, app, release_identity).config)


@router.get("/apps/{app_identity}/releases/{release_identity}/output")
async def get_release_output(
    release_identity: str, app: AppDep, platform: PlatformDep, db: DB
) -> PlainTextResponse:
    release = platform.apps.releases.find(db, app, release_identity)
    if release.output is None:
        raise NotFound(f"Release v{release.version} has no release phase output.")
    return PlainTextResponse(release.output)


@router.post("/apps/{app_identity}/releases", status_code=201)
def create_release(
    body: ReleaseCreate, app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    """`{"release": id}` rolls back to that release; `{"slug": id}` releases a slug."""
    releases = platform.apps.releases
    if body.release:
        target = releases.find(db, app, body.release)
        release = releases.rollback(db, app, target, caller.user)
    elif body.slug:
        slug = db.scalar(select(Slug).where(Slug.app_id == app.id, Slug.id == body.slug))
        if slug is None:
            raise NotFound(f"Couldn't find slug {body.slug} of {app.name}.", resource="slug")
        description = body.description or f"Deploy {(slug.commit or slug.id)[:8]}"
        release = releases.create(db, app, description=description, user=caller.user, slug=slug)
    else:
        raise InvalidParams('Send {"release": ID} to roll back or {"slug": ID} to release a slug.')
    return release_view(release, app, platform.settings, current=True)
