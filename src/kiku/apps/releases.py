"""`Releases`: every deploy, config change and rollback makes a new, numbered release."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.dynos.formation import Formations
from kiku.errors import InvalidParams, NotFound
from kiku.events import AppEvents
from kiku.store.models import App, Release, Slug, User

# The Procfile type whose command runs before a release goes live.
RELEASE_TYPE = "release"


class Releases:
    def __init__(self, now: Callable[[], datetime], events: AppEvents | None = None) -> None:
        self._now = now
        self.events = events or AppEvents()
        self.formations = Formations(now)

    def create(
        self,
        db: Session,
        app: App,
        *,
        description: str,
        user: User | None,
        slug: Slug | None = None,
        config: dict[str, str] | None = None,
    ) -> Release:
        """A new release; the version comes from a per-app counter, so it is never reused.

        A slug with a `release` process type makes the release `pending`: the dyno manager
        runs the release phase, and the release succeeds (and goes live) only if it does.
        """
        app.release_seq = (app.release_seq or 0) + 1
        status = (
            "pending" if slug is not None and RELEASE_TYPE in slug.process_types else "succeeded"
        )
        now = self._now()
        release = Release(
            app_id=app.id,
            version=app.release_seq,
            description=description,
            status=status,
            slug=slug,
            config=dict(app.config if config is None else config),
            features=list(app.features or []),
            user=user,
            created_at=now,
            updated_at=now,
        )
        db.add(release)
        db.flush()
        self.events.api(app.id, description, user)
        if status == "succeeded":
            self._go_live(db, app, release)
            self.events.api(app.id, f"Release v{release.version} created", user)
        else:
            self.events.api(app.id, f"Running release v{release.version} commands", user)
        return release

    def finish_release_phase(
        self, db: Session, app: App, release: Release, *, ok: bool, output: str
    ) -> None:
        """The release command ended: the release goes live, or is marked failed and the
        current release keeps serving (HEROKU_BEHAVIOUR §6.3)."""
        release.output = output
        release.status = "succeeded" if ok else "failed"
        release.updated_at = self._now()
        user = release.user
        if ok:
            self._go_live(db, app, release)
            self.events.api(app.id, f"Release v{release.version} created", user)
        else:
            self.events.api(app.id, f"Release v{release.version} command failed", user)

    def _go_live(self, db: Session, app: App, release: Release) -> None:
        app.released_at = release.updated_at
        if release.slug is not None:
            app.slug_size = release.slug.size
            self.formations.follow_slug(db, app, release.slug)

    def current(self, db: Session, app: App) -> Release | None:
        """The newest succeeded release: what the app runs."""
        query = (
            select(Release)
            .where(Release.app_id == app.id, Release.status == "succeeded")
            .order_by(Release.version.desc())
            .limit(1)
        )
        return db.scalar(query)

    def current_slug(self, db: Session, app: App) -> Slug | None:
        """The code the app runs now: config changes release it again with the new config."""
        current = self.current(db, app)
        return current.slug if current else None

    def find(self, db: Session, app: App, identity: str) -> Release:
        """By id, version number, or `vN`."""
        text = identity.lower().removeprefix("v")
        column = Release.version if text.isdigit() else Release.id
        value: int | str = int(text) if text.isdigit() else identity
        found = db.scalar(select(Release).where(Release.app_id == app.id, column == value))
        if found is None:
            raise NotFound(f"Couldn't find release {identity} of {app.name}.", resource="release")
        return found

    def rollback(self, db: Session, app: App, target: Release, user: User | None) -> Release:
        """A new release with the target's slug and config vars (HEROKU_BEHAVIOUR §6.4)."""
        if target.status != "succeeded":
            raise InvalidParams(
                f"Release v{target.version} {target.status}; only succeeded releases can be "
                "rolled back to."
            )
        app.config = dict(target.config)
        return self.create(
            db,
            app,
            description=f"Rollback to v{target.version}",
            user=user,
            slug=target.slug,
            config=target.config,
        )
