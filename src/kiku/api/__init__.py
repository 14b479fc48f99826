"""The Platform API v3: `create_app(settings)` builds the ASGI app."""

from kiku.api.app import create_app

__all__ = ["create_app"]
