"""`/apps/{app}/buildpack-installations`: the app's ordered buildpacks (empty: detect)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kiku.api.deps import AppDep, PlatformDep
from kiku.api.views import buildpack_installations_view
from kiku.build.buildpacks import check_reference

router = APIRouter()


class BuildpackUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    buildpack: str


class BuildpackInstallations(BaseModel):
    model_config = ConfigDict(extra="ignore")
    updates: list[BuildpackUpdate]


@router.get("/apps/{app_identity}/buildpack-installations")
async def list_buildpacks(app: AppDep) -> list[dict[str, Any]]:
    return buildpack_installations_view(app)


@router.put("/apps/{app_identity}/buildpack-installations")
def set_buildpacks(
    body: BuildpackInstallations, app: AppDep, platform: PlatformDep
) -> list[dict[str, Any]]:
    app.buildpacks = [check_reference(update.buildpack) for update in body.updates]
    app.updated_at = platform.now()
    return buildpack_installations_view(app)
