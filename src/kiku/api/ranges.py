"""Heroku's `Range` paging for list endpoints (HEROKU_BEHAVIOUR §10.4, HEROKU_CLI_WIRE §3).

Clients send `Range: id ..; max=200`, `name ]foo..; order=desc,max=10;`, heroku3's malformed
`id ..; ;`, or nothing. A response with more items left is a 206 with
`Next-Range: <field> ]<last>..; max=N[, order=desc]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from kiku.errors import RangeNotSatisfiable

MAX_PAGE = 1000
T = TypeVar("T")
_RANGE = re.compile(
    r"^\s*(?P<field>[a-z_]+)\s*(?P<excl>\])?(?P<start>[^\s]*?)\.\.(?P<end>[^\s;]*)\s*$"
)


@dataclass(frozen=True)
class Range:
    field: str
    start: str | None = None
    exclusive: bool = False
    end: str | None = None
    max: int = 200
    order: Literal["asc", "desc"] = "asc"

    def next_range(self, last: str) -> str:
        text = f"{self.field} ]{last}..; max={self.max}"
        return text + ", order=desc" if self.order == "desc" else text


def parse_range(header: str | None, fields: Sequence[str], default_max: int = 200) -> Range:
    """Read a Range header leniently; only a field the list cannot sort by is refused."""
    default = Range(fields[0], max=min(default_max, MAX_PAGE))
    if not header or not header.strip():
        return default
    spec, _, options = header.partition(";")
    match = _RANGE.match(spec)
    if match is None:
        return default
    field = match["field"]
    if field not in fields:
        raise RangeNotSatisfiable(
            f"Range by {field!r} is not supported here; use one of: {', '.join(fields)}."
        )
    size, order = default.max, "asc"
    for option in re.split(r"[;,]", options):
        key, _, value = option.strip().partition("=")
        if key == "max" and value.strip().isdigit():
            size = max(1, min(int(value), MAX_PAGE))
        elif key == "order" and value.strip() in ("asc", "desc"):
            order = value.strip()
    return Range(
        field=field,
        start=match["start"] or None,
        exclusive=bool(match["excl"]),
        end=match["end"] or None,
        max=size,
        order=order,  # type: ignore[arg-type]
    )


@dataclass
class Page:
    items: list[Any]
    headers: dict[str, str]
    status: int


def _page(items: list[Any], key: Callable[[Any], str], rng: Range, fields: Sequence[str]) -> Page:
    more = len(items) > rng.max
    items = items[: rng.max]
    headers = {"Accept-Ranges": ", ".join(fields)}
    if items:
        headers["Content-Range"] = f"{rng.field} {key(items[0])}..{key(items[-1])}"
    if more:
        headers["Next-Range"] = rng.next_range(key(items[-1]))
    return Page(items, headers, 206 if more else 200)


def paginate_query(
    db: Session,
    query: Select[Any],
    rng: Range,
    columns: dict[str, InstrumentedAttribute[Any]],
    convert: Callable[[str], Any] = str,
) -> Page:
    """Page a SELECT in the database: order by the range field, start after the cursor."""
    column = columns[rng.field]
    desc = rng.order == "desc"
    if rng.start is not None:
        start = convert(rng.start)
        if desc:
            query = query.where(column < start if rng.exclusive else column <= start)
        else:
            query = query.where(column > start if rng.exclusive else column >= start)
    if rng.end is not None:
        end = convert(rng.end)
        query = query.where(column >= end if desc else column <= end)
    query = query.order_by(column.desc() if desc else column.asc()).limit(rng.max + 1)
    items = list(db.scalars(query))
    return _page(items, lambda item: str(getattr(item, column.key)), rng, list(columns))


def paginate_list(items: Sequence[T], rng: Range, keys: dict[str, Callable[[T], Any]]) -> Page:
    """Page a list already in memory (small collections such as collaborators)."""
    key = keys[rng.field]
    desc = rng.order == "desc"
    chosen = sorted(items, key=key, reverse=desc)
    if rng.start is not None:
        start = type(key(chosen[0]))(rng.start) if chosen else rng.start

        def after(item: T) -> bool:
            value = key(item)
            if desc:
                return bool(value < start if rng.exclusive else value <= start)
            return bool(value > start if rng.exclusive else value >= start)

        chosen = [item for item in chosen if after(item)]
    return _page(chosen[: rng.max + 1], lambda item: str(key(item)), rng, list(keys))
