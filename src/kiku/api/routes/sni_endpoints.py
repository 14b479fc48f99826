"""`/apps/{app}/sni-endpoints`: certificates for an app's custom domains (`kiku certs`).

The router picks a certificate by the TLS client's SNI name: a custom domain's own endpoint
if it is tied to one, else any of the app's endpoints whose certificate covers the name.
A new endpoint is tied to the app's custom domains it covers that have none yet. Private
keys go in, never out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.api.deps import DB, AppDep, PlatformDep
from kiku.api.routes.common import listed
from kiku.api.routes.domains import find_endpoint
from kiku.api.views import fixed_id, iso
from kiku.apps import names
from kiku.apps.certs import covers, describe, parse
from kiku.errors import NotFound
from kiku.store.models import App, Domain, SniEndpoint

router = APIRouter()


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    certificate_chain: str
    private_key: str


def endpoint_view(app: App, endpoint: SniEndpoint, domain_ids: list[str]) -> dict[str, Any]:
    cert = describe(endpoint.certificate_chain)
    return {
        "app": {"id": app.id, "name": app.name},
        "certificate_chain": endpoint.certificate_chain,
        "created_at": iso(endpoint.created_at),
        "display_name": None,
        "domains": domain_ids,
        "id": endpoint.id,
        "name": endpoint.name,
        "ssl_cert": {
            "ca_signed?": not cert.self_signed,
            "cert_domains": list(cert.domains),
            "expires_at": iso(cert.expires_at),
            "id": fixed_id("ssl-cert", f"{endpoint.id}:{endpoint.updated_at.timestamp()}"),
            "issuer": cert.issuer,
            "self_signed?": cert.self_signed,
            "starts_at": iso(cert.starts_at),
            "subject": cert.subject,
        },
        "updated_at": iso(endpoint.updated_at),
    }


def _domains(db: Session, app: App) -> list[Domain]:
    return list(db.scalars(select(Domain).where(Domain.app_id == app.id)))


def _view(db: Session, app: App, endpoint: SniEndpoint) -> dict[str, Any]:
    ids = [d.id for d in _domains(db, app) if d.sni_endpoint_id == endpoint.id]
    return endpoint_view(app, endpoint, ids)


def _find(db: Session, app: App, identity: str) -> SniEndpoint:
    endpoint = find_endpoint(db, app, identity)
    if endpoint is None:
        raise NotFound("Couldn't find that SNI endpoint.", resource="sni-endpoint")
    return endpoint


def _tie_uncovered(db: Session, app: App, endpoint: SniEndpoint, domains: tuple[str, ...]) -> None:
    for domain in _domains(db, app):
        if domain.sni_endpoint_id is None and covers(domains, domain.hostname):
            domain.sni_endpoint_id = endpoint.id


def _new_name(db: Session, app: App) -> str:
    """A generated `adjective-noun-1234` name, unique within the app."""
    taken = set(db.scalars(select(SniEndpoint.name).where(SniEndpoint.app_id == app.id)))
    name = names.generate()
    while name in taken:
        name = names.generate()
    return name


@router.get("/apps/{app_identity}/sni-endpoints")
async def list_endpoints(
    request: Request, app: AppDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    keys = {"id": lambda e: e["id"], "name": lambda e: e["name"]}
    query = select(SniEndpoint).where(SniEndpoint.app_id == app.id)
    views = [_view(db, app, e) for e in db.scalars(query)]
    return listed(request, views, keys, platform.settings.page_size)


@router.post("/apps/{app_identity}/sni-endpoints", status_code=201)
def add_endpoint(body: EndpointBody, app: AppDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    cert = parse(body.certificate_chain, body.private_key, platform.now())
    now = platform.now()
    endpoint = SniEndpoint(
        app_id=app.id,
        name=_new_name(db, app),
        certificate_chain=body.certificate_chain,
        private_key=body.private_key,
        created_at=now,
        updated_at=now,
    )
    db.add(endpoint)
    db.flush()
    _tie_uncovered(db, app, endpoint, cert.domains)
    db.flush()
    return _view(db, app, endpoint)


@router.get("/apps/{app_identity}/sni-endpoints/{endpoint_identity}")
async def get_endpoint(endpoint_identity: str, app: AppDep, db: DB) -> dict[str, Any]:
    return _view(db, app, _find(db, app, endpoint_identity))


@router.patch("/apps/{app_identity}/sni-endpoints/{endpoint_identity}")
def update_endpoint(
    endpoint_identity: str, body: EndpointBody, app: AppDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    endpoint = _find(db, app, endpoint_identity)
    cert = parse(body.certificate_chain, body.private_key, platform.now())
    endpoint.certificate_chain = body.certificate_chain
    endpoint.private_key = body.private_key
    endpoint.updated_at = platform.now()
    _tie_uncovered(db, app, endpoint, cert.domains)
    db.flush()
    return _view(db, app, endpoint)


@router.delete("/apps/{app_identity}/sni-endpoints/{endpoint_identity}")
def remove_endpoint(endpoint_identity: str, app: AppDep, db: DB) -> dict[str, Any]:
    endpoint = _find(db, app, endpoint_identity)
    view = _view(db, app, endpoint)
    for domain in _domains(db, app):
        if domain.sni_endpoint_id == endpoint.id:
            domain.sni_endpoint_id = None
    db.delete(endpoint)
    return view
