"""`AppRegistry`: finding apps by name or id for a user, creating, renaming and destroying them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from kiku.apps import names
from kiku.apps.releases import Releases
from kiku.errors import AppNotFound, Forbidden, InvalidParams
from kiku.events import AppEvents
from kiku.settings import DEFAULT_APPS_PER_ACCOUNT
from kiku.store.models import App, Collaborator, User

DEFAULT_STACK = "kiku-24"
DEFAULT_REGION = "us"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def visible_to(user: User) -> Select[App]:
    """Apps `user` owns or collaborates on."""
    shared = select(Collaborator.app_id).where(Collaborator.user_id == user.id)
    return select(App).where(or_(App.owner_id == user.id, App.id.in_(shared)))


class AppRegistry:
    def __init__(
        self,
        now: Callable[[], datetime],
        *,
        apps_per_account: int = DEFAULT_APPS_PER_ACCOUNT,
        rng: random.Random | None = None,
        events: AppEvents | None = None,
    ) -> None:
        self._now = now
        self.apps_per_account = apps_per_account
        self.events = events or AppEvents()
        self.releases = Releases(now, self.events)
        self._rng = rng

    def find(self, db: Session, identity: str, user: User) -> App:
        """The app named (or with id) `identity`, if `user` may see it.

        Like Heroku: an unknown app is 404, an app someone else keeps is 403.
        """
        column = App.id if _is_uuid(identity) else App.name
        query = select(App).options(joinedload(App.owner)).where(column == identity.lower())
        app = db.scalar(query)
        if app is None:
            raise AppNotFound(identity)
        if not self.can_access(db, app, user):
            raise Forbidden(f"You do not have access to the app {app.name}.", resource="app")
        return app

    def can_access(self, db: Session, app: App, user: User) -> bool:
        if app.owner_id == user.id:
            return True
        member = select(Collaborator.id).where(
            Collaborator.app_id == app.id, Collaborator.user_id == user.id
        )
        return db.scalar(member) is not None

    def require_owner(self, app: App, user: User, action: str) -> None:
        if app.owner_id != user.id:
            raise Forbidden(f"Only the owner of {app.name} can {action}.", resource="app")

    def create(self, db: Session, owner: User, name: str | None = None) -> App:
        owned = db.query(App).filter(App.owner_id == owner.id).count()
        if owned >= self.apps_per_account:
            raise InvalidParams(
                f"You've reached the limit of {self.apps_per_account} apps for your account. "
                "Destroy an app you no longer need (kiku apps:destroy) and try again."
            )
        if name is not None:
            return self._insert(db, owner, self._checked(db, name))
        for _ in range(20):
            candidate = names.generate(self._rng)
            if db.scalar(select(App.id).where(App.name == candidate)) is None:
                return self._insert(db, owner, candidate)
        raise InvalidParams("Could not generate a free app name; please choose one.")

    def rename(self, db: Session, app: App, new_name: str) -> None:
        if new_name != app.name:
            app.name = self._checked(db, new_name)
            app.updated_at = self._now()

    def destroy(self, db: Session, app: App) -> None:
        db.delete(app)

    def _checked(self, db: Session, name: str) -> str:
        if not names.is_valid(name):
            raise InvalidParams(names.RULE)
        if db.scalar(select(App.id).where(App.name == name)) is not None:
            raise InvalidParams("Name is already taken")
        return name

    def _insert(self, db: Session, owner: User, name: str) -> App:
        now = self._now()
        app = App(
            name=name,
            owner=owner,
            region=DEFAULT_REGION,
            stack=DEFAULT_STACK,
            build_stack=DEFAULT_STACK,
            config={},
            buildpacks=[],
            features=[],
            release_seq=0,
            created_at=now,
            updated_at=now,
        )
        db.add(app)
        try:
            with db.begin_nested():
                db.flush()
        except IntegrityError as exc:  # a concurrent create took the name first
            raise InvalidParams("Name is already taken") from exc
        self.releases.create(db, app, description="Initial release", user=owner)
        return app
