"""`/apps/{app}/domains`: the hostnames the router serves an app at.

Every app has its default hostname `APP.DOMAIN` (kind `heroku`, not stored) and any custom
ones added (kind `custom`, the `domains` table), each maybe tied to one of the app's SNI
endpoints (certificates). Point a custom domain's DNS at the `cname` to reach the router.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kiku.api.deps import DB, AppDep, PlatformDep
from kiku.api.routes.common import listed
from kiku.api.views import fixed_id, iso
from kiku.apps.domains import MAX_PER_APP, checked_hostname
from kiku.errors import InvalidParams, NotFound
from kiku.settings import Settings
from kiku.store.models import App, Domain, SniEndpoint

router = APIRouter()


class DomainCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hostname: str
    sni_endpoint: str | None = None


class DomainUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sni_endpoint: str | None


def domain_view(
    app: App, settings: Settings, row: Domain | None, endpoint: SniEndpoint | None = None
) -> dict[str, Any]:
    """A custom domain (`row`), or the app's default one when `row` is None."""
    default = row is None
    return {
        "acm_status": None,
        "acm_status_reason": None,
        "app": {"id": app.id, "name": app.name},
        "cname": None if default else settings.web_host(app.name),
        "created_at": iso(app.created_at if row is None else row.created_at),
        "hostname": settings.web_host(app.name) if row is None else row.hostname,
        "id": fixed_id("domain", app.id) if row is None else row.id,
        "kind": "heroku" if default else "custom",
        "sni_endpoint": None if endpoint is None else {"id": endpoint.id, "name": endpoint.name},
        "status": "succeeded",
        "updated_at": iso(app.created_at if row is None else row.updated_at),
    }


def _custom(db: Session, app: App) -> list[Domain]:
    query = select(Domain).where(Domain.app_id == app.id)
    return list(db.scalars(query.order_by(Domain.created_at, Domain.hostname)))


def _endpoints(db: Session, app: App) -> dict[str, SniEndpoint]:
    return {e.id: e for e in db.scalars(select(SniEndpoint).where(SniEndpoint.app_id == app.id))}


def _views(db: Session, app: App, settings: Settings) -> list[dict[str, Any]]:
    endpoints = _endpoints(db, app)
    views = [domain_view(app, settings, None)]
    for row in _custom(db, app):
        endpoint = endpoints.get(row.sni_endpoint_id or "")
        views.append(domain_view(app, settings, row, endpoint))
    return views


def find_endpoint(db: Session, app: App, identity: str) -> SniEndpoint | None:
    """One of the app's SNI endpoints by id or name."""
    return db.scalar(
        select(SniEndpoint).where(
            SniEndpoint.app_id == app.id,
            or_(SniEndpoint.id == identity, SniEndpoint.name == identity.lower()),
        )
    )


def _endpoint_for(db: Session, app: App, identity: str | None) -> SniEndpoint | None:
    if identity is None:
        return None
    endpoint = find_endpoint(db, app, identity)
    if endpoint is None:
        raise InvalidParams(f"Couldn't find the SNI endpoint {identity} on {app.name}.")
    return endpoint


def _find(db: Session, app: App, settings: Settings, identity: str) -> Domain | None:
    """The custom domain by id or hostname; None for the default domain; else NotFound."""
    key = identity.strip().lower()
    if key in (fixed_id("domain", app.id), settings.web_host(app.name)):
        return None
    row = db.scalar(
        select(Domain).where(Domain.app_id == app.id, or_(Domain.id == key, Domain.hostname == key))
    )
    if row is None:
        raise NotFound("Couldn't find that domain.", resource="domain")
    return row


@router.get("/apps/{app_identity}/domains")
async def list_domains(
    request: Request, app: AppDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    keys = {"id": lambda d: d["id"], "hostname": lambda d: d["hostname"]}
    views = _views(db, app, platform.settings)
    return listed(request, views, keys, platform.settings.page_size)


@router.post("/apps/{app_identity}/domains", status_code=201)
def add_domain(body: DomainCreate, app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    settings = platform.settings
    hostname = checked_hostname(body.hostname, settings.domain)
    taken = db.scalar(select(Domain).where(Domain.hostname == hostname))
    if taken is not None:
        if taken.app_id == app.id:
            raise InvalidParams(f"{hostname} is already added to {app.name}.")
        raise InvalidParams(f"{hostname} is already in use by another app.")
    count = db.scalar(select(func.count()).select_from(Domain).where(Domain.app_id == app.id))
    if (count or 0) >= MAX_PER_APP:
        raise InvalidParams(f"{app.name} has {MAX_PER_APP} custom domains, the most an app may.")
    endpoint = _endpoint_for(db, app, body.sni_endpoint)
    now = platform.now()
    row = Domain(
        app_id=app.id,
        hostname=hostname,
        kind="custom",
        sni_endpoint_id=endpoint.id if endpoint else None,
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    db.flush()
    return domain_view(app, settings, row, endpoint)


@router.get("/apps/{app_identity}/domains/{domain_identity}")
async def get_domain(
    domain_identity: str, app: AppDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    row = _find(db, app, platform.settings, domain_identity)
    endpoint = _endpoints(db, app).get(row.sni_endpoint_id or "") if row else None
    return domain_view(app, platform.settings, row, endpoint)


@router.patch("/apps/{app_identity}/domains/{domain_identity}")
def update_domain(
    domain_identity: str, body: DomainUpdate, app: AppDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    row = _find(db, app, platform.settings, domain_identity)
    if row is None:
        raise InvalidParams("The default domain uses kiku's own certificate.")
    endpoint = _endpoint_for(db, app, body.sni_endpoint)
    row.sni_endpoint_id = endpoint.id if endpoint else None
    row.updated_at = platform.now()
    return domain_view(app, platform.settings, row, endpoint)


@router.delete("/apps/{app_identity}/domains/{domain_identity}")
def remove_domain(
    domain_identity: str, app: AppDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    row = _find(db, app, platform.settings, domain_identity)
    if row is None:
        raise InvalidParams(
            f"{platform.settings.web_host(app.name)} is {app.name}'s default "
            "domain; it goes only with the app."
        )
    endpoint = _endpoints(db, app).get(row.sni_endpoint_id or "")
    view = domain_view(app, platform.settings, row, endpoint)
    db.delete(row)
    return view
