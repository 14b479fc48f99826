"""Desired state of the platform. Every part reads and writes it through these models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Always hands back aware UTC datetimes; SQLite forgets the zone, PostgreSQL keeps it."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("kiku stores aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str] = mapped_column(String(64))
    # The last TOTP time step accepted, so one code cannot be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime)

    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class Authorization(Timestamped, Base):
    """An OAuth authorization: one API token. Only the token's SHA-256 is stored."""

    __tablename__ = "authorizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    scope: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["global"])
    token_id: Mapped[str] = mapped_column(String(36), default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's last characters, so a user can tell tokens apart in listings.
    token_hint: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class App(Timestamped, Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    region: Mapped[str] = mapped_column(String(30), default="us")
    stack: Mapped[str] = mapped_column(String(30))
    build_stack: Mapped[str] = mapped_column(String(30))
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    buildpack_provided_description: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    repo_size: Mapped[int | None] = mapped_column(BigInteger)
    slug_size: Mapped[int | None] = mapped_column(BigInteger)
    # The current config vars; each release keeps its own snapshot.
    config: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Buildpack URLs or names, in order; empty means "detect".
    buildpacks: Mapped[list[str]] = mapped_column(JSON, default=list)
    release_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Labs features switched on (names); each release keeps the set it was made with.
    features: Mapped[list[str]] = mapped_column(JSON, default=list)

    owner: Mapped[User] = relationship()
    collaborators: Mapped[list[Collaborator]] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True
    )


class Collaborator(Timestamped, Base):
    __tablename__ = "collaborators"
    __table_args__ = (UniqueConstraint("app_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    app: Mapped[App] = relationship(back_populates="collaborators")
    user: Mapped[User] = relationship()


class Slug(Timestamped, Base):
    """A compiled app: a tar.gz of /app in the blob store, with its process types."""

    __tablename__ = "slugs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    checksum: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(BigInteger)
    process_types: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    commit: Mapped[str | None] = mapped_column(String(64))
    commit_description: Mapped[str | None] = mapped_column(String(500))
    stack: Mapped[str] = mapped_column(String(30))
    buildpack_provided_description: Mapped[str | None] = mapped_column(String(200))
    # What the slug was built from (tree, buildpacks, stack, config): an identical push
    # reuses the slug instead of compiling again.
    source_key: Mapped[str | None] = mapped_column(String(64), index=True)


class Build(Timestamped, Base):
    __tablename__ = "builds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    source_version: Mapped[str | None] = mapped_column(String(64))
    buildpacks: Mapped[list[str]] = mapped_column(JSON, default=list)
    stack: Mapped[str] = mapped_column(String(30))
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id", ondelete="SET NULL"))
    release_id: Mapped[str | None] = mapped_column(String(36))
    output: Mapped[str] = mapped_column(Text, default="")

    user: Mapped[User | None] = relationship()


class Release(Timestamped, Base):
    """One version of an app: a slug (or none yet) plus a snapshot of its config vars."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="succeeded")
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id", ondelete="SET NULL"))
    config: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    output: Mapped[str | None] = mapped_column(Text)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)

    slug: Mapped[Slug | None] = relationship()
    user: Mapped[User | None] = relationship()


class Formation(Timestamped, Base):
    """Desired state: how many dynos of each process type, of which size."""

    __tablename__ = "formations"
    __table_args__ = (UniqueConstraint("app_id", "type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[str] = mapped_column(String(30), default="standard-1x")
    # Bumped by restarts: dynos started before it are replaced.
    restart_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Dyno(Timestamped, Base):
    """What runs: written by the dyno manager only, read by the API."""

    __tablename__ = "dynos"
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(140))
    type: Mapped[str] = mapped_column(String(128))
    command: Mapped[str] = mapped_column(Text)
    size: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20))
    release_id: Mapped[str | None] = mapped_column(String(36))
    release_version: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(60))
    port: Mapped[int | None] = mapped_column(Integer)
    # Set by the API (restart, stop); acted on and cleared by the dyno manager.
    restart_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # One-off dynos (`kiku run`): asked for by the API, started and ended by the manager.
    one_off: Mapped[bool] = mapped_column(Boolean, default=False)
    attach: Mapped[bool] = mapped_column(Boolean, default=False)
    tty: Mapped[bool] = mapped_column(Boolean, default=False)
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    exit_code: Mapped[int | None] = mapped_column(Integer)


class LogDrain(Timestamped, Base):
    """Where an app's log stream is also sent: syslog(+tls)://, https:// or http://."""

    __tablename__ = "log_drains"
    __table_args__ = (UniqueConstraint("app_id", "url"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # "d.<uuid>": the syslog HOSTNAME and Logplex-Drain-Token receivers know the drain by.
    token: Mapped[str] = mapped_column(String(40), unique=True)


class SniEndpoint(Timestamped, Base):
    """A certificate and key an operator or user gave for some of an app's domains."""

    __tablename__ = "sni_endpoints"
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    certificate_chain: Mapped[str] = mapped_column(Text)
    private_key: Mapped[str] = mapped_column(Text)


class Domain(Timestamped, Base):
    """A custom hostname the router serves for an app (besides APP.DOMAIN)."""

    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="custom")
    sni_endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("sni_endpoints.id", ondelete="SET NULL")
    )
