"""`/oauth/authorizations`: the two-step login that issues API tokens, and token management."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.api.deps import DB, CallerDep, PlatformDep, read_credentials
from kiku.api.ranges import paginate_query, parse_range
from kiku.api.routes.common import page_response
from kiku.api.views import authorization_view
from kiku.errors import NotFound, RateLimited, Unauthorized
from kiku.platform import Platform
from kiku.store.models import Authorization, User

router = APIRouter()


class AuthorizationCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    scope: list[str] = Field(default_factory=lambda: ["global"])
    description: str = Field(default="", max_length=500)
    expires_in: int | None = None


def _login_user(request: Request, platform: Platform, db: Session, code: str | None) -> User:
    """A token already in hand needs nothing more; a password needs the second factor."""
    credentials = read_credentials(request)
    if credentials is None or not credentials.secret:
        raise Unauthorized("Send your email and password with HTTP Basic auth to log in.")
    try:
        return platform.accounts.authenticate(db, credentials.secret).user
    except Unauthorized:
        if not credentials.username:
            raise
    email = credentials.username.strip().lower()
    allowed, _ = platform.login_limiter.take(f"login:{email}")
    if not allowed:
        raise RateLimited()
    return platform.accounts.login(db, email, credentials.secret, code)


@router.post("/oauth/authorizations", status_code=201)
def create_authorization(
    request: Request,
    platform: PlatformDep,
    db: DB,
    body: AuthorizationCreate | None = None,
    two_factor_code: str | None = Header(default=None, alias="Heroku-Two-Factor-Code"),
) -> dict[str, Any]:
    body = body or AuthorizationCreate()
    user = _login_user(request, platform, db, two_factor_code)
    issued = platform.accounts.issue_token(
        db, user, description=body.description, scope=body.scope, expires_in=body.expires_in
    )
    authorization = issued.authorization
    return authorization_view(
        authorization, platform.accounts.expires_in(authorization), issued.token
    )


@router.get("/oauth/authorizations")
async def list_authorizations(
    request: Request, caller: CallerDep, platform: PlatformDep, db: DB
) -> JSONResponse:
    columns = {"id": Authorization.id}
    rng = parse_range(request.headers.get("range"), list(columns), platform.settings.page_size)
    query = select(Authorization).where(Authorization.user_id == caller.user.id)
    page = paginate_query(db, query, rng, columns)
    items = [authorization_view(a, platform.accounts.expires_in(a)) for a in page.items]
    return page_response(page, items)


def _own_authorization(db: Session, caller: Any, identity: str) -> Authorization:
    if identity == "~":
        authorization: Authorization = caller.authorization
        return authorization
    found = db.scalar(
        select(Authorization).where(
            Authorization.id == identity, Authorization.user_id == caller.user.id
        )
    )
    if found is None:
        raise NotFound("Couldn't find that authorization.", resource="oauth-authorization")
    return found


@router.get("/oauth/authorizations/{identity}")
async def get_authorization(
    identity: str, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    authorization = _own_authorization(db, caller, identity)
    return authorization_view(authorization, platform.accounts.expires_in(authorization))


@router.delete("/oauth/authorizations/{identity}")
def delete_authorization(
    identity: str, caller: CallerDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    authorization = _own_authorization(db, caller, identity)
    view = authorization_view(authorization, platform.accounts.expires_in(authorization))
    db.delete(authorization)
    return view


@router.delete("/oauth/sessions/~")
def logout(caller: CallerDep, platform: PlatformDep, db: DB) -> dict[str, Any]:
    """`kiku logout` / `heroku logout`: the token in use stops working."""
    authorization = caller.authorization
    view = authorization_view(authorization, platform.accounts.expires_in(authorization))
    db.delete(authorization)
    return view
