"""`/apps/{app}/features`: labs features (`kiku features`, `heroku labs`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kiku.api.deps import AppDep, CallerDep, PlatformDep
from kiku.api.views import fixed_id, iso
from kiku.apps.features import FEATURES, Feature, feature_named
from kiku.errors import NotFound
from kiku.store.models import App

router = APIRouter()


class FeatureUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    enabled: bool


def feature_view(feature: Feature, app: App) -> dict[str, Any]:
    return {
        "created_at": iso(app.created_at),
        "description": feature.description,
        "display_name": feature.display_name,
        "doc_url": feature.doc_url,
        "enabled": feature.name in (app.features or []),
        "feedback_email": "kiku@localhost",
        "id": fixed_id("feature", feature.name),
        "name": feature.name,
        "state": "beta",
        "updated_at": iso(app.updated_at),
    }


@router.get("/apps/{app_identity}/features")
async def list_features(app: AppDep) -> list[dict[str, Any]]:
    return [feature_view(feature, app) for feature in FEATURES.values()]


@router.get("/apps/{app_identity}/features/{name}")
async def get_feature(name: str, app: AppDep) -> dict[str, Any]:
    return feature_view(feature_named(name), app)


@router.patch("/apps/{app_identity}/features/{name}")
def update_feature(
    name: str, body: FeatureUpdate, app: AppDep, platform: PlatformDep
) -> dict[str, Any]:
    feature = feature_named(name)
    enabled = set(app.features or [])
    enabled = enabled | {feature.name} if body.enabled else enabled - {feature.name}
    app.features = sorted(enabled)
    app.updated_at = platform.now()
    return feature_view(feature, app)


# Account-wide labs (`heroku labs` lists them beside the app's): kiku has none yet.
@router.get("/account/features")
async def list_account_features(caller: CallerDep) -> list[dict[str, Any]]:
    return []


@router.api_route("/account/features/{name}", methods=["GET", "PATCH"])
async def account_feature(name: str, caller: CallerDep) -> dict[str, Any]:
    raise NotFound(
        f"Couldn't find that feature ({name}): kiku has no account features; app features "
        "are at /apps/{app}/features (kiku features -a APP).",
        resource="account-feature",
    )
