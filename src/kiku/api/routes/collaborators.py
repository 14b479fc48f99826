"""`/apps/{app}/collaborators`: who besides the owner may see and change an app."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kiku.api.deps import DB, AppDep, CallerDep, PlatformDep
from kiku.api.routes.common import listed
from kiku.api.views import collaborator_view
from kiku.errors import InvalidParams, NotFound
from kiku.store.models import App, Collaborator, User

router = APIRouter()


class CollaboratorCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user: str
    silent: bool = False


def _members(app: App) -> list[dict[str, Any]]:
    members = [collaborator_view(app, app.owner)]
    members += [collaborator_view(app, c.user, entry=c) for c in app.collaborators]
    return members


def _find_user(db: Session, identity: str) -> User | None:
    return db.scalar(select(User).where(or_(User.email == identity.lower(), User.id == identity)))


def _find_member(app: App, identity: str) -> dict[str, Any]:
    for member in _members(app):
        if identity.lower() in (member["id"], member["user"]["id"], member["user"]["email"]):
            return member
    raise NotFound("Couldn't find that collaborator.", resource="collaborator")


@router.get("/apps/{app_identity}/collaborators")
async def list_collaborators(request: Request, app: AppDep, platform: PlatformDep) -> JSONResponse:
    keys = {"id": lambda m: m["id"], "email": lambda m: m["user"]["email"]}
    return listed(request, _members(app), keys, platform.settings.page_size)


@router.post("/apps/{app_identity}/collaborators", status_code=201)
def add_collaborator(
    body: CollaboratorCreate, app: AppDep, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    user = _find_user(db, body.user)
    if user is None:
        raise NotFound(
            f"Couldn't find a kiku account for {body.user}; ask your operator to create it "
            "(kiku admin:create-user).",
            resource="user",
        )
    if user.id == app.owner_id or any(c.user_id == user.id for c in app.collaborators):
        raise InvalidParams(f"{user.email} is already a collaborator on {app.name}.")
    now = platform.now()
    entry = Collaborator(app=app, user=user, created_at=now, updated_at=now)
    db.add(entry)
    db.flush()
    return collaborator_view(app, user, entry=entry)


@router.get("/apps/{app_identity}/collaborators/{collaborator_identity}")
async def get_collaborator(collaborator_identity: str, app: AppDep) -> dict[str, Any]:
    return _find_member(app, collaborator_identity)


@router.delete("/apps/{app_identity}/collaborators/{collaborator_identity}")
def remove_collaborator(collaborator_identity: str, app: AppDep, db: DB) -> dict[str, Any]:
    member = _find_member(app, collaborator_identity)
    if member["role"] == "owner":
        raise InvalidParams(f"The owner of {app.name} cannot be removed from it.")
    entry = next(c for c in app.collaborators if c.id == member["id"])
    db.delete(entry)
    return member
