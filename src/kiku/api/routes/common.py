"""Small helpers the resource modules share."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from kiku.api.ranges import Page


def page_response(page: Page, items: list[Any]) -> JSONResponse:
    return JSONResponse(items, status_code=page.status, headers=page.headers)
