"""`/account`, `/users/{id}` and `/account/rate-limits`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from kiku.api.deps import DB, CallerDep, PlatformDep, uncounted_caller
from kiku.api.views import account_view
from kiku.errors import NotFound

router = APIRouter()


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=200)


@router.get("/account")
async def get_account(caller: CallerDep) -> dict[str, Any]:
    return account_view(caller.user)


@router.patch("/account")
def update_account(body: AccountUpdate, caller: CallerDep, platform: PlatformDep) -> dict[str, Any]:
    if body.name is not None:
        caller.user.name = body.name
        caller.user.updated_at = platform.now()
    return account_view(caller.user)


@router.get("/users/{user_identity}")
async def get_user(user_identity: str, caller: CallerDep) -> dict[str, Any]:
    user = caller.user
    if user_identity not in ("~", user.id, user.email):
        raise NotFound("Couldn't find that user.", resource="user")
    return account_view(user)


@router.get("/account/rate-limits")
async def rate_limits(
    platform: PlatformDep, caller: Any = Depends(uncounted_caller)
) -> dict[str, int]:
    return {"remaining": platform.limiter.remaining(caller.user.id)}


@router.post("/account/recovery-codes", status_code=201)
def regenerate_recovery_codes(
    caller: CallerDep,
    platform: PlatformDep,
    db: DB,
    two_factor_code: str | None = Header(default=None, alias="Heroku-Two-Factor-Code"),
) -> list[str]:
    """New recovery codes replace the old ones; proving the second factor is required."""
    platform.accounts.check_second_factor(db, caller.user, two_factor_code)
    return platform.accounts.regenerate_recovery_codes(caller.user)
