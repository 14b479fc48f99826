"""JSON shapes of kiku's resources, following Heroku's schema (api/platform-api-schema.json)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from kiku.settings import Settings
from kiku.store.models import App, Authorization, Collaborator, User

# Stable ids for the fixed things Heroku gives ids to (stacks, regions, generations).
_NAMESPACE = uuid.UUID("6b1d2a39-8c41-4e8e-9d6e-6b696b750001")


def fixed_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def named(kind: str, name: str) -> dict[str, str]:
    return {"id": fixed_id(kind, name), "name": name}


def app_view(app: App, settings: Settings) -> dict[str, Any]:
    return {
        "acm": False,
        "archived_at": None,
        "buildpack_provided_description": app.buildpack_provided_description,
        "build_stack": named("stack", app.build_stack),
        "created_at": iso(app.created_at),
        "generation": named("generation", "cedar"),
        "git_url": settings.git_url(app.name),
        "id": app.id,
        "internal_routing": None,
        "maintenance": app.maintenance,
        "name": app.name,
        "owner": {"email": app.owner.email, "id": app.owner.id},
        "organization": None,
        "team": None,
        "region": named("region", app.region),
        "released_at": iso(app.released_at),
        "repo_size": app.repo_size,
        "slug_size": app.slug_size,
        "space": None,
        "stack": named("stack", app.stack),
        "updated_at": iso(app.updated_at),
        "web_url": settings.web_url(app.name),
    }


def account_view(user: User) -> dict[str, Any]:
    return {
        "allow_tracking": False,
        "beta": False,
        "country_of_residence": None,
        "created_at": iso(user.created_at),
        "default_organization": None,
        "default_team": None,
        "delinquent_at": None,
        "email": user.email,
        "federated": False,
        "id": user.id,
        "identity_provider": None,
        "last_login": iso(user.last_login),
        "name": user.name,
        "sms_number": None,
        "suspended_at": None,
        "two_factor_authentication": True,
        "updated_at": iso(user.updated_at),
        "verified": user.verified,
    }


def authorization_view(
    authorization: Authorization, expires_in: int | None, token: str | None = None
) -> dict[str, Any]:
    """`token` is known only when it is issued; later views show a hint, never the token."""
    user = authorization.user
    return {
        "access_token": {
            "expires_in": expires_in,
            "id": authorization.token_id,
            "token": token if token is not None else f"HRKU-…{authorization.token_hint}",
        },
        "client": None,
        "created_at": iso(authorization.created_at),
        "description": authorization.description,
        "grant": None,
        "id": authorization.id,
        "refresh_token": None,
        "scope": list(authorization.scope),
        "session": None,
        "updated_at": iso(authorization.updated_at),
        "user": {"email": user.email, "full_name": user.name, "id": user.id},
    }


def collaborator_view(app: App, user: User, *, entry: Collaborator | None = None) -> dict[str, Any]:
    """One member of an app. The owner is listed too, with role `owner` and no row of its own."""
    created = entry.created_at if entry else app.created_at
    updated = entry.updated_at if entry else app.created_at
    return {
        "app": {"id": app.id, "name": app.name},
        "created_at": iso(created),
        "id": entry.id if entry else fixed_id("owner", app.id),
        "permissions": [],
        "role": "collaborator" if entry else "owner",
        "updated_at": iso(updated),
        "user": {"email": user.email, "federated": False, "id": user.id},
    }
