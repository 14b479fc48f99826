"""FastAPI dependencies: the platform, a database session, and who is calling.

The dependencies are `async` and query the store directly on the event loop: they are
single-row reads by unique key (well under a millisecond, and WAL readers never wait for
a writer), while each trip through the thread pool costs more than the query. Endpoints
that write, or hash passwords, stay plain functions and run in the thread pool.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from kiku.errors import RateLimited, Unauthorized
from kiku.platform import Platform
from kiku.store.models import App, Authorization, User


async def get_platform(request: Request) -> Platform:
    # async: a plain attribute read needs no trip through the thread pool.
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_db(platform: PlatformDep) -> AsyncIterator[Session]:
    with platform.store.session() as db:
        yield db


# Function scope: the commit happens before the response is sent, so a client never sees
# success for a write that then fails to commit.
DB = Annotated[Session, Depends(get_db, scope="function")]


@dataclass(frozen=True)
class Credentials:
    """What the Authorization header carried: a token, or (Basic) a user name and secret."""

    secret: str
    username: str | None = None


def read_credentials(request: HTTPConnection) -> Credentials | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credentials(value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("Malformed Basic credentials.") from exc
        username, _, secret = decoded.partition(":")
        return Credentials(secret, username or None)
    return None


@dataclass(frozen=True)
class Caller:
    user: User
    authorization: Authorization


def _authenticate(request: Request, platform: Platform, db: Session) -> Caller:
    credentials = read_credentials(request)
    if credentials is None or not credentials.secret or credentials.secret == "undefined":
        raise Unauthorized("Invalid credentials provided. Run `kiku login` first.")
    authorization = platform.accounts.authenticate(db, credentials.secret)
    return Caller(authorization.user, authorization)


async def current_caller(request: Request, platform: PlatformDep, db: DB) -> Caller:
    """The authenticated caller; each call spends one of the account's hourly requests."""
    caller = _authenticate(request, platform, db)
    allowed, remaining = platform.limiter.take(caller.user.id)
    request.state.ratelimit_remaining = remaining
    if not allowed:
        raise RateLimited()
    return caller


async def uncounted_caller(request: Request, platform: PlatformDep, db: DB) -> Caller:
    """The caller, for endpoints that cost nothing (GET /account/rate-limits)."""
    caller = _authenticate(request, platform, db)
    request.state.ratelimit_remaining = platform.limiter.remaining(caller.user.id)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


async def get_app(app_identity: str, caller: CallerDep, platform: PlatformDep, db: DB) -> App:
    """The `{app_identity}` path segment (name or id), if the caller may see the app."""
    return platform.apps.find(db, app_identity, caller.user)


AppDep = Annotated[App, Depends(get_app)]
