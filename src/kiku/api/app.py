"""`create_app(platform)`: the Platform API as an ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from kiku.api import errors
from kiku.api.middleware import (
    AcceptVersionMiddleware,
    ETagMiddleware,
    RateLimitHeaderMiddleware,
    RequestIdMiddleware,
)
from kiku.api.routes import (
    account,
    apps,
    buildpack_installations,
    builds,
    collaborators,
    config_vars,
    domains,
    features,
    formation,
    log_drains,
    log_sessions,
    metrics,
    oauth,
    one_offs,
    releases,
    schema,
    sni_endpoints,
    stacks,
)
from kiku.git import smarthttp
from kiku.platform import Platform

ROUTERS = (
    account.router,
    oauth.router,
    apps.router,
    collaborators.router,
    config_vars.router,
    releases.router,
    builds.router,
    buildpack_installations.router,
    formation.router,
    features.router,
    metrics.router,
    domains.router,
    sni_endpoints.router,
    one_offs.router,
    log_sessions.router,
    log_drains.router,
    stacks.router,
    schema.router,
    smarthttp.router,
)


def create_app(platform: Platform, *, close_platform: bool = False) -> FastAPI:
    """The API over `platform`'s parts. Two apps built here share nothing but what is passed."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if close_platform:
            platform.close()

    app = FastAPI(
        title="kiku Platform API",
        version="3",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.platform = platform
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    # Added innermost first: the request id wraps everything, including 406 refusals.
    app.add_middleware(ETagMiddleware)
    app.add_middleware(AcceptVersionMiddleware)
    app.add_middleware(RateLimitHeaderMiddleware, limit=platform.settings.rate_limit_per_hour)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Request-Id", "RateLimit-Remaining", "Next-Range", "ETag"],
    )
    app.add_middleware(RequestIdMiddleware)
    return app
