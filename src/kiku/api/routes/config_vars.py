"""`/apps/{app}/config-vars`: reading and changing config vars; each change is a release."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from kiku.api.deps import DB, AppDep, CallerDep, PlatformDep
from kiku.apps.config import apply_changes
from kiku.errors import InvalidParams

router = APIRouter()


@router.get("/apps/{app_identity}/config-vars")
async def get_config_vars(app: AppDep) -> dict[str, str]:
    return dict(app.config)


@router.patch("/apps/{app_identity}/config-vars")
def update_config_vars(
    app: AppDep,
    caller: CallerDep,
    platform: PlatformDep,
    db: DB,
    changes: Any = Body(default=None),
) -> dict[str, str]:
    if not isinstance(changes, dict):
        raise InvalidParams('Send a JSON object of config vars, e.g. {"FOO": "bar", "OLD": null}.')
    updated, description = apply_changes(app.config, changes)
    if description is not None:
        app.config = updated
        app.updated_at = platform.now()
        releases = platform.apps.releases
        slug = releases.current_slug(db, app)
        releases.create(db, app, description=description, user=caller.user, slug=slug)
    return dict(app.config)
