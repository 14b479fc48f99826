"""Small helpers the resource modules share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from kiku.api.ranges import Page, paginate_list, parse_range


def page_response(page: Page, items: list[Any]) -> JSONResponse:
    return JSONResponse(items, status_code=page.status, headers=page.headers)


def listed(
    request: Request,
    views: Sequence[dict[str, Any]],
    keys: dict[str, Callable[[dict[str, Any]], Any]],
    page_size: int,
) -> JSONResponse:
    """A list resource held in memory, one `Range` page of it (sorted by one of `keys`)."""
    rng = parse_range(request.headers.get("range"), list(keys), page_size)
    page = paginate_list(views, rng, keys)
    return page_response(page, page.items)
