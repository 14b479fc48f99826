"""The store: migrations match the models, run at every start, and work on PostgreSQL too."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from starlette.testclient import TestClient

from kiku.api import create_app
from kiku.platform import Platform
from kiku.settings import Settings
from kiku.store import Store
from kiku.store.models import Base
from kikutest import ACCEPT, FakeClock, bearer, login, signup
from pgcluster import PgCluster


def test_upgrade_is_idempotent_and_uses_wal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'kiku.db'}")
    store.upgrade()
    store.upgrade()
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert {"users", "apps", "authorizations", "collaborators"} <= set(
        inspect(store.engine).get_table_names()
    )
    store.close()


def test_migrations_match_the_models(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'kiku.db'}")
    store.upgrade()
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], "models changed without a migration: add one under store/migrations"
    store.close()


def test_settings_pick_sqlite_or_postgres(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).sqlalchemy_url == f"sqlite:///{tmp_path / 'kiku.db'}"
    env = {"KIKU_DATABASE_URL": "postgres://u:p@db/kiku", "HOME": str(tmp_path)}
    settings = Settings.from_env(env)
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:p@db/kiku"
    assert settings.data_dir == tmp_path / ".kiku"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.stop()


def test_platform_on_postgres(postgres: PgCluster, tmp_path: Path) -> None:
    clock = FakeClock()
    settings = Settings.from_env({"KIKU_DATABASE_URL": postgres.url}, data_dir=tmp_path)
    platform = Platform.build(settings, clock=clock)
    platform.store.upgrade()  # a second start must find nothing to do
    try:
        with TestClient(create_app(platform), headers=ACCEPT) as api:
            token = bearer(login(api, signup(platform, "pg@example.com"), clock))
            assert api.post("/apps", headers=token, json={"name": "on-postgres"}).status_code == 201
            assert api.post("/apps", headers=token, json={"name": "on-postgres"}).status_code == 422
            listed = api.get("/apps", headers={**token, "Range": "name ..; max=1"})
            assert [a["name"] for a in listed.json()] == ["on-postgres"]
            assert api.delete("/apps/on-postgres", headers=token).status_code == 200
        with platform.store.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        platform.close()
