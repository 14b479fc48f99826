"""`/stacks`: the root filesystems dynos and builds run on (kiku has one, `kiku-24`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kiku.api.deps import AppDep, CallerDep
from kiku.api.views import fixed_id
from kiku.apps.registry import DEFAULT_STACK
from kiku.errors import NotFound

router = APIRouter()
# When kiku-24 first shipped; stacks are fixed things with stable ids and dates.
SHIPPED = "2026-11-28T00:00:00Z"


def stack_view(name: str) -> dict[str, Any]:
    return {
        "created_at": SHIPPED,
        "default": name == DEFAULT_STACK,
        "id": fixed_id("stack", name),
        "name": name,
        "state": "public",
        "updated_at": SHIPPED,
    }


STACKS = (DEFAULT_STACK,)


@router.get("/stacks")
async def list_stacks(caller: CallerDep) -> list[dict[str, Any]]:
    return [stack_view(name) for name in STACKS]


@router.get("/stacks/{identity}")
async def get_stack(identity: str, caller: CallerDep) -> dict[str, Any]:
    for name in STACKS:
        if identity in (name, fixed_id("stack", name)):
            return stack_view(name)
    raise NotFound(f"Couldn't find stack {identity}; kiku offers {', '.join(STACKS)}.")


@router.get("/apps/{app_identity}/available-stacks")
async def available_stacks(app: AppDep) -> list[dict[str, Any]]:
    return [stack_view(name) for name in STACKS]
