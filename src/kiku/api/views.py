"""JSON shapes of kiku's resources, following Heroku's schema (api/platform-api-schema.json)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from kiku.dynos.sizes import size_named
from kiku.settings import Settings
from kiku.store.models import (
    App,
    Authorization,
    Build,
    Collaborator,
    Dyno,
    Formation,
    Release,
    Slug,
    User,
)

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


def release_view(
    release: Release, app: App, settings: Settings, *, current: bool
) -> dict[str, Any]:
    user = release.user
    output_url = None
    if release.output is not None:
        output_url = f"{settings.api_url}/apps/{app.id}/releases/{release.id}/output"
    return {
        "addon_plan_names": [],
        "app": {"id": app.id, "name": app.name},
        "artifacts": [{"id": release.slug_id, "type": "slug"}] if release.slug_id else [],
        "created_at": iso(release.created_at),
        "current": current,
        "description": release.description,
        "eligible_for_rollback": release.status == "succeeded" and not current,
        "id": release.id,
        "output_stream_url": output_url,
        "slug": {"id": release.slug_id} if release.slug_id else None,
        "status": release.status,
        "updated_at": iso(release.updated_at),
        "user": {"email": user.email, "id": user.id} if user else _PLATFORM_USER,
        "version": release.version,
    }


# Releases nobody made by hand (none yet) are credited to the platform, as Heroku does.
_PLATFORM_USER = {"email": "kiku@localhost", "id": fixed_id("user", "kiku")}


def buildpack_ref(reference: str) -> dict[str, str]:
    return {"name": reference, "url": reference}


def build_view(build: Build, app: App, settings: Settings) -> dict[str, Any]:
    user = build.user
    return {
        "app": {"id": app.id},
        "buildpacks": [buildpack_ref(b) for b in build.buildpacks],
        "created_at": iso(build.created_at),
        "generation": "cedar",
        "id": build.id,
        "output_stream_url": f"{settings.api_url}/apps/{app.id}/builds/{build.id}/output",
        "release": {"id": build.release_id} if build.release_id else None,
        "slug": {"id": build.slug_id} if build.slug_id else None,
        "source_blob": {
            "checksum": None,
            "url": settings.git_url(app.name),
            "version": build.source_version,
            "version_description": None,
        },
        "stack": build.stack,
        "status": build.status,
        "updated_at": iso(build.updated_at),
        "user": {"email": user.email, "id": user.id} if user else _PLATFORM_USER,
    }


def slug_view(slug: Slug, app: App, settings: Settings) -> dict[str, Any]:
    return {
        "blob": {"method": "GET", "url": f"{settings.api_url}/apps/{app.id}/slugs/{slug.id}/blob"},
        "buildpack_provided_description": slug.buildpack_provided_description,
        "checksum": slug.checksum,
        "commit": slug.commit,
        "commit_description": slug.commit_description,
        "created_at": iso(slug.created_at),
        "deleted_at": None,
        "id": slug.id,
        "process_types": dict(slug.process_types),
        "size": slug.size,
        "stack": named("stack", slug.stack),
        "updated_at": iso(slug.updated_at),
    }


def buildpack_installations_view(app: App) -> list[dict[str, Any]]:
    return [
        {"buildpack": buildpack_ref(reference), "ordinal": ordinal}
        for ordinal, reference in enumerate(app.buildpacks)
    ]


def formation_view(formation: Formation, app: App, command: str | None) -> dict[str, Any]:
    size = size_named(formation.size)
    return {
        "app": {"id": app.id, "name": app.name},
        "command": command or "",
        "created_at": iso(formation.created_at),
        "dyno_size": {"id": fixed_id("dyno-size", size.name.lower()), "name": size.name},
        "id": formation.id,
        "quantity": formation.quantity,
        "size": size.name,
        "type": formation.type,
        "updated_at": iso(formation.updated_at),
    }


def dyno_view(dyno: Dyno, app: App) -> dict[str, Any]:
    return {
        "app": {"id": app.id, "name": app.name},
        "attach_url": None,
        "command": dyno.command,
        "created_at": iso(dyno.created_at),
        "id": dyno.id,
        "name": dyno.name,
        "release": {"id": dyno.release_id, "version": dyno.release_version}
        if dyno.release_id
        else None,
        "size": size_named(dyno.size).name,
        "state": dyno.state,
        "type": dyno.type,
        "updated_at": iso(dyno.updated_at),
    }
