"""The Platform API over real HTTP, against a real `kiku server`."""

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from kikuserver import KikuServer
from schemacheck import assert_valid, assert_valid_list

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    server = KikuServer(
        tmp_path_factory.mktemp("api") / "data", env={"KIKU_APPS_PER_ACCOUNT": "300"}
    )
    server.start()
    yield server
    server.stop()


def enrol(server: KikuServer, email: str) -> dict[str, Any]:
    return server.create_user(email, PASSWORD)


def token_for(server: KikuServer, email: str, code: str) -> str:
    with server.client() as api:
        response = api.post(
            "/oauth/authorizations",
            auth=(email, PASSWORD),
            headers={"Heroku-Two-Factor-Code": code},
            json={"scope": ["global"], "description": "integration test"},
        )
    assert response.status_code == 201, response.text
    assert_valid("oauth-authorization", response.json())
    token: str = response.json()["access_token"]["token"]
    return token


def test_two_step_login_is_enforced(server: KikuServer) -> None:
    user = enrol(server, "twostep@example.com")
    with server.client() as api:
        basic = ("twostep@example.com", PASSWORD)
        no_code = api.post("/oauth/authorizations", auth=basic, json={})
        assert no_code.status_code == 403
        assert no_code.json()["id"] == "two_factor"
        wrong = api.post(
            "/oauth/authorizations", auth=basic, headers={"Heroku-Two-Factor-Code": "123456"}
        )
        assert wrong.status_code == 403 and wrong.json()["id"] == "two_factor"
        bad_password = api.post(
            "/oauth/authorizations",
            auth=("twostep@example.com", "not the password"),
            headers={"Heroku-Two-Factor-Code": pyotp.TOTP(user["totp_secret"]).now()},
        )
        assert bad_password.status_code == 401
    code = pyotp.TOTP(user["totp_secret"]).now()
    token = token_for(server, "twostep@example.com", code)
    with server.client(token) as api:
        account = api.get("/account")
        assert account.status_code == 200
        assert_valid("account", account.json())
        assert account.json()["two_factor_authentication"] is True
        uuid.UUID(account.headers["Request-Id"])
        assert int(account.headers["RateLimit-Remaining"]) < 4500
        limits = api.get("/account/rate-limits")
        assert_valid("rate-limit", limits.json())
        assert_valid_list("oauth-authorization", api.get("/oauth/authorizations").json())


def test_expired_token_is_refused(server: KikuServer) -> None:
    user = enrol(server, "expiry@example.com")
    token = token_for(server, "expiry@example.com", user["recovery_codes"][0])
    with server.client(token) as api:
        current = api.get("/oauth/authorizations/~").json()
        assert 364 * 86400 < current["access_token"]["expires_in"] <= 365 * 86400
        # Move the token's expiry into the past in the server's own store (no waiting).
        past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        with sqlite3.connect(server.data_dir / "kiku.db") as db:
            db.execute(
                "UPDATE authorizations SET expires_at = ? WHERE id = ?", (past, current["id"])
            )
        expired = api.get("/account")
        assert expired.status_code == 401
        assert expired.json()["id"] == "unauthorized"
        assert "expired" in expired.json()["message"]


def test_apps_names_access_and_paging(server: KikuServer) -> None:
    owner = enrol(server, "owner@example.com")
    stranger = enrol(server, "stranger@example.com")
    owner_token = token_for(server, "owner@example.com", owner["recovery_codes"][0])
    stranger_token = token_for(server, "stranger@example.com", stranger["recovery_codes"][0])

    with server.client(owner_token) as api:
        bad = api.post("/apps", json={"name": "Not_Valid"})
        assert bad.status_code == 422
        assert bad.json()["id"] == "invalid_params"
        assert "start with a letter" in bad.json()["message"]

        created = api.post("/apps", json={"name": "http-app"})
        assert created.status_code == 201
        app = created.json()
        assert_valid("app", app)
        assert app["web_url"] == f"http://http-app.localhost:{server.router_port}/"
        assert app["git_url"] == f"{server.url}/http-app.git"
        assert api.get(f"/apps/{app['id']}").json()["name"] == "http-app"

        added = api.post("/apps/http-app/collaborators", json={"user": "stranger@example.com"})
        assert_valid("collaborator", added.json())
        assert_valid_list("collaborator", api.get("/apps/http-app/collaborators").json())
        api.delete("/apps/http-app/collaborators/stranger@example.com")

        for i in range(249):
            assert api.post("/apps", json={"name": f"paged-{i:03}"}).status_code == 201

    with server.client(stranger_token) as api:
        forbidden = api.get("/apps/http-app")
        assert forbidden.status_code == 403 and forbidden.json()["id"] == "forbidden"
        assert api.delete("/apps/http-app").status_code == 403
        missing = api.get("/apps/no-such-app")
        assert missing.status_code == 404 and missing.json()["id"] == "not_found"

    with server.client(owner_token) as api:
        first = api.get("/apps")
        assert first.status_code == 206
        assert len(first.json()) == 200
        assert_valid_list("app", first.json())
        second = api.get("/apps", headers={"Range": first.headers["Next-Range"]})
        assert second.status_code == 200 and "Next-Range" not in second.headers
        names = {a["name"] for a in first.json() + second.json()}
        assert len(names) == 250 and "http-app" in names

        by_name = api.get("/users/~/apps", headers={"Range": "name ]paged-100..; max=10"})
        assert [a["name"] for a in by_name.json()] == [f"paged-{i}" for i in range(101, 111)]
        assert by_name.headers["Next-Range"] == "name ]paged-110..; max=10"


def test_unknown_endpoint_and_version(server: KikuServer) -> None:
    with server.client() as api:
        old = api.get("/account", headers={"Accept": "application/vnd.heroku+json; version=2"})
        assert old.status_code == 406 and old.json()["id"] == "not_acceptable"
        anonymous = api.get("/apps")
        assert anonymous.status_code == 401
        assert anonymous.json() == {
            "id": "unauthorized",
            "message": "Invalid credentials provided. Run `kiku login` first.",
        }
    with httpx.Client(base_url=server.url) as raw:
        assert raw.get("/nowhere").json()["id"] == "not_found"


def test_schema_served(server: KikuServer, tmp_path: Path) -> None:
    with server.client() as api:
        schema = api.get("/schema")
    assert schema.status_code == 200
    assert len(schema.json()["definitions"]) == 100
