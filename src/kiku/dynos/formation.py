"""`Formations`: the desired dynos of an app, changed by scaling and by new process types."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.dynos.sizes import DEFAULT_SIZE, check_formation, host_memory_mb, size_named
from kiku.errors import InvalidParams, NotFound
from kiku.store.models import App, Formation, Slug

QUANTITY = re.compile(r"^([+-]?)(\d+)$")
# `release` runs in the release phase, never as a formation dyno.
NOT_SCALABLE = ("release",)


@dataclass(frozen=True)
class Change:
    """One `ps:scale` entry: quantity absolute ("2") or relative ("+1"), size optional."""

    type: str
    quantity: str | int | None = None
    size: str | None = None


class Formations:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now

    def of_app(self, db: Session, app: App) -> list[Formation]:
        query = select(Formation).where(Formation.app_id == app.id).order_by(Formation.type)
        return list(db.scalars(query))

    def get(self, db: Session, app: App, kind: str) -> Formation:
        found = db.scalar(
            select(Formation).where(Formation.app_id == app.id, Formation.type == kind)
        )
        if found is None:
            raise NotFound(
                f"Couldn't find that process type ({kind}). Process types come from the "
                "Procfile of the app's current release.",
                resource="formation",
            )
        return found

    def follow_slug(self, db: Session, app: App, slug: Slug) -> None:
        """New process types join the formation: web at 1 (as Heroku's first deploy), the
        rest at 0. Types the slug no longer has stay, scaled as they were, but idle."""
        existing = {f.type for f in self.of_app(db, app)}
        now = self._now()
        for kind in slug.process_types:
            if kind in existing or kind in NOT_SCALABLE:
                continue
            db.add(
                Formation(
                    app_id=app.id,
                    type=kind,
                    quantity=1 if kind == "web" else 0,
                    size=DEFAULT_SIZE,
                    created_at=now,
                    updated_at=now,
                )
            )
        db.flush()

    def apply(self, db: Session, app: App, changes: list[Change]) -> list[Formation]:
        """Scale and resize several types at once; all or nothing, under Heroku's rules."""
        formations = {f.type: f for f in self.of_app(db, app)}
        wanted = {kind: (f.quantity, f.size) for kind, f in formations.items()}
        for change in changes:
            if change.type not in formations:
                self.get(db, app, change.type)  # raises the 404 that names the type
            quantity, size = wanted[change.type]
            if change.quantity is not None:
                quantity = _quantity(change.quantity, quantity)
            if change.size is not None:
                size = size_named(change.size).name.lower()
            wanted[change.type] = (quantity, size)
        check_formation(wanted, host_memory_mb())
        now = self._now()
        touched = []
        for change in changes:
            formation = formations[change.type]
            formation.quantity, formation.size = wanted[change.type]
            formation.updated_at = now
            touched.append(formation)
        return touched

    def request_restart(self, db: Session, app: App, kind: str | None = None) -> None:
        now = self._now()
        for formation in self.of_app(db, app):
            if kind is None or formation.type == kind:
                formation.restart_requested_at = now


def _quantity(value: str | int, current: int) -> int:
    text = str(value).strip()
    match = QUANTITY.match(text)
    if match is None:
        raise InvalidParams(f"Invalid quantity {text!r}: use a number, or +N / -N.")
    sign, number = match.group(1), int(match.group(2))
    if sign == "+":
        return current + number
    if sign == "-":
        return max(0, current - number)
    return number
