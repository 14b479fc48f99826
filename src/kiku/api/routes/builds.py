"""`/apps/{app}/builds`, the build cache, and slugs."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from sqlalchemy import select

from kiku.api.deps import DB, AppDep, PlatformDep
from kiku.api.ranges import paginate_query, parse_range
from kiku.api.routes.common import page_response
from kiku.api.views import build_view, slug_view
from kiku.errors import NotFound
from kiku.store.models import App, Build, Slug

router = APIRouter()


def _build(db: DB, app: App, build_id: str) -> Build:
    build = db.scalar(select(Build).where(Build.app_id == app.id, Build.id == build_id))
    if build is None:
        raise NotFound(f"Couldn't find build {build_id} of {app.name}.", resource="build")
    return build


@router.get("/apps/{app_identity}/builds")
async def list_builds(request: Request, app: AppDep, platform: PlatformDep, db: DB) -> JSONResponse:
    columns = {"created_at": Build.created_at, "id": Build.id}
    rng = parse_range(request.headers.get("range"), list(columns), platform.settings.page_size)
    query = select(Build).where(Build.app_id == app.id)
    page = paginate_query(db, query, rng, columns)
    return page_response(page, [build_view(b, app, platform.settings) for b in page.items])


@router.get("/apps/{app_identity}/builds/{build_id}")
async def get_build(build_id: str, app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    return build_view(_build(db, app, build_id), app, platform.settings)


@router.get("/apps/{app_identity}/builds/{build_id}/output")
async def get_build_output(build_id: str, app: AppDep, db: DB) -> PlainTextResponse:
    return PlainTextResponse(_build(db, app, build_id).output)


@router.delete("/apps/{app_identity}/build-cache", status_code=202)
async def purge_build_cache(app: AppDep, platform: PlatformDep) -> dict[str, Any]:
    await asyncio.to_thread(platform.compiler.purge_cache, app.id)
    return {}


def _slug(db: DB, app: App, slug_id: str) -> Slug:
    slug = db.scalar(select(Slug).where(Slug.app_id == app.id, Slug.id == slug_id))
    if slug is None:
        raise NotFound(f"Couldn't find slug {slug_id} of {app.name}.", resource="slug")
    return slug


@router.get("/apps/{app_identity}/slugs/{slug_id}")
async def get_slug(slug_id: str, app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    return slug_view(_slug(db, app, slug_id), app, platform.settings)


@router.get("/apps/{app_identity}/slugs/{slug_id}/blob")
async def get_slug_blob(slug_id: str, app: AppDep, platform: PlatformDep, db: DB) -> FileResponse:
    slug = _slug(db, app, slug_id)
    return FileResponse(platform.blobs.path(slug.blob_key), media_type="application/gzip")
