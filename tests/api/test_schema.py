"""Every response kiku's API gives validates against Heroku's published Platform API schema.

The validator (and why it is stricter than plain draft-04) lives in tests/schemacheck.py.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from jsonschema import Draft4Validator
from starlette.testclient import TestClient

from kiku.platform import Platform
from kikutest import PASSWORD, FakeClock, bearer, login, signup
from schemacheck import (
    SCHEMA_PATH,
    VALIDATORS,
    assert_valid,
    assert_valid_list,
    load_schema,
    make_validators,
    problems,
)

# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def user(platform: Platform, api: TestClient, clock: FakeClock) -> Iterator[dict[str, str]]:
    enrolment = signup(platform, "ada@example.com")
    token = login(api, enrolment, clock)
    yield {"email": enrolment.user.email, "id": enrolment.user.id, "token": token}


@pytest.fixture
def auth(user: dict[str, str]) -> dict[str, str]:
    return bearer(user["token"])


# -- account -------------------------------------------------------------------------------


def test_account_info_update_and_user_info_fit_the_account_schema(
    api: TestClient, auth: dict[str, str], user: dict[str, str]
) -> None:
    response = api.get("/account", headers=auth)
    assert response.status_code == 200
    assert_valid("account", response.json())
    assert response.json()["email"] == user["email"]

    response = api.patch("/account", headers=auth, json={"name": "Ada Lovelace"})
    assert response.status_code == 200
    assert_valid("account", response.json())
    assert response.json()["name"] == "Ada Lovelace"

    for identity in ("~", user["id"], user["email"]):
        response = api.get(f"/users/{identity}", headers=auth)
        assert response.status_code == 200
        assert_valid("account", response.json())


def test_rate_limits_fit_the_rate_limit_schema(api: TestClient, auth: dict[str, str]) -> None:
    response = api.get("/account/rate-limits", headers=auth)
    assert response.status_code == 200
    assert_valid("rate-limit", response.json())


# -- oauth-authorization -------------------------------------------------------------------


def test_authorizations_fit_the_oauth_authorization_schema(
    platform: Platform, api: TestClient, clock: FakeClock
) -> None:
    enrolment = signup(platform, "grace@example.com")
    code = pyotp.TOTP(enrolment.totp_secret).at(int(clock()))
    response = api.post(
        "/oauth/authorizations",
        auth=(enrolment.user.email, PASSWORD),
        headers={"Heroku-Two-Factor-Code": code},
        json={"description": "schema test", "scope": ["global"]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert_valid("oauth-authorization", created)
    auth = bearer(created["access_token"]["token"])

    response = api.get("/oauth/authorizations", headers=auth)
    assert response.status_code == 200
    assert_valid_list("oauth-authorization", response.json())

    for identity in (created["id"], "~"):
        response = api.get(f"/oauth/authorizations/{identity}", headers=auth)
        assert response.status_code == 200
        assert_valid("oauth-authorization", response.json())
        assert response.json()["id"] == created["id"]

    response = api.delete(f"/oauth/authorizations/{created['id']}", headers=auth)
    assert response.status_code == 200
    assert_valid("oauth-authorization", response.json())
    assert api.get("/account", headers=auth).status_code == 401


# -- app -----------------------------------------------------------------------------------


def test_app_lifecycle_fits_the_app_schema(api: TestClient, auth: dict[str, str]) -> None:
    response = api.post("/apps", headers=auth, json={"name": "schema-app"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert_valid("app", created)

    response = api.post("/apps", headers=auth)  # a generated name
    assert response.status_code == 201, response.text
    assert_valid("app", response.json())

    for path in ("/apps", "/users/~/apps"):
        response = api.get(path, headers=auth)
        assert response.status_code == 200
        assert_valid_list("app", response.json())
        assert len(response.json()) == 2

    response = api.get("/apps", headers={**auth, "Range": "name ..; max=1"})
    assert response.status_code == 206
    assert "Next-Range" in response.headers
    assert_valid_list("app", response.json())

    for identity in ("schema-app", created["id"]):
        response = api.get(f"/apps/{identity}", headers=auth)
        assert response.status_code == 200
        assert_valid("app", response.json())

    response = api.patch(
        "/apps/schema-app", headers=auth, json={"name": "schema-app-2", "maintenance": True}
    )
    assert response.status_code == 200, response.text
    assert_valid("app", response.json())
    assert response.json()["name"] == "schema-app-2"
    assert response.json()["maintenance"] is True

    response = api.delete("/apps/schema-app-2", headers=auth)
    assert response.status_code == 200
    assert_valid("app", response.json())
    assert api.get("/apps/schema-app-2", headers=auth).status_code == 404


# -- collaborator --------------------------------------------------------------------------


def test_collaborators_fit_the_collaborator_schema(
    platform: Platform, api: TestClient, auth: dict[str, str], user: dict[str, str]
) -> None:
    other = signup(platform, "grace@example.com")
    assert api.post("/apps", headers=auth, json={"name": "shared-app"}).status_code == 201

    response = api.post(
        "/apps/shared-app/collaborators", headers=auth, json={"user": other.user.email}
    )
    assert response.status_code == 201, response.text
    added = response.json()
    assert_valid("collaborator", added)
    assert added["user"]["email"] == other.user.email

    response = api.get("/apps/shared-app/collaborators", headers=auth)
    assert response.status_code == 200
    assert_valid_list("collaborator", response.json())
    assert {m["user"]["email"] for m in response.json()} == {user["email"], other.user.email}

    for identity in (added["id"], other.user.email, user["email"]):
        response = api.get(f"/apps/shared-app/collaborators/{identity}", headers=auth)
        assert response.status_code == 200
        assert_valid("collaborator", response.json())

    response = api.delete(f"/apps/shared-app/collaborators/{other.user.email}", headers=auth)
    assert response.status_code == 200
    assert_valid("collaborator", response.json())
    assert response.json()["id"] == added["id"]


# -- the validator bites -------------------------------------------------------------------


@pytest.fixture
def good_app(api: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    response = api.post("/apps", headers=auth, json={"name": "good-app"})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    assert problems("app", body) == ""
    return body


APP_PROPERTIES = sorted(json.loads(SCHEMA_PATH.read_text())["definitions"]["app"]["properties"])


@pytest.mark.parametrize("missing", APP_PROPERTIES)
def test_an_app_body_missing_any_property_is_refused(
    good_app: dict[str, Any], missing: str
) -> None:
    body = {key: value for key, value in good_app.items() if key != missing}
    assert f"'{missing}' is a required property" in problems("app", body)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(body: dict[str, Any]) -> None:
        for part in parents:
            body = body[part]
        body[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(body: dict[str, Any]) -> None:
        for part in parents:
            body = body[part]
        del body[last]

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("maintenance", "no"), "is not of type 'boolean'"),
        (_set("repo_size", "12kB"), "is not of type 'integer', 'null'"),
        (_set("created_at", None), "is not of type 'string'"),
        (_set("created_at", "yesterday"), "is not a 'date-time'"),
        (_set("released_at", "2026-13-40T25:00:00Z"), "is not a 'date-time'"),
        (_set("id", "not-a-uuid"), "is not a 'uuid'"),
        (_set("id", "0123456789ABCDEF0123456789ABCDEF"), "is not a 'uuid'"),
        (_set("name", "Bad_Name"), "does not match"),
        (_set("git_url", "https://example.com/Bad_Name.git"), "does not match"),
        (_set("web_url", "http://example.com/other/"), "does not match"),
        (_set("shiny", True), "Additional properties are not allowed ('shiny' was unexpected)"),
        (_drop("owner.email"), "'email' is a required property"),
        (_set("owner.email", "nobody"), "is not a 'email'"),
        (_set("owner.role", "admin"), "('role' was unexpected)"),
        (_drop("region.name"), "'name' is a required property"),
        (_set("stack", None), "is not of type 'object'"),
        (_set("team", "acme"), "is not of type 'null', 'object'"),
    ],
    ids=lambda param: None if callable(param) else param[:40],
)
def test_a_broken_app_body_is_refused(
    good_app: dict[str, Any], change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    body = copy.deepcopy(good_app)
    change(body)
    assert expected in problems("app", body)


def test_unchanged_heroku_patterns_would_refuse_kikus_urls(good_app: dict[str, Any]) -> None:
    """The pattern swap is needed, and it is the only thing between kiku and Heroku's schema."""
    heroku = make_validators(load_schema(kiku_patterns=False))
    found = problems("app", good_app, heroku).splitlines()
    assert len(found) == 2
    assert found[0].startswith("git_url:") and "does not match" in found[0]
    assert found[1].startswith("web_url:") and "does not match" in found[1]


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ("account", "two_factor_authentication"),
        ("oauth-authorization", "access_token"),
        ("collaborator", "role"),
        ("rate-limit", "remaining"),
    ],
)
def test_every_resource_requires_its_listed_properties(resource: str, field: str) -> None:
    validator = VALIDATORS[resource]
    assert f"'{field}' is a required property" in problems(resource, {})
    assert not validator.is_valid([])


# -- error bodies --------------------------------------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "required": ["id", "message"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z_]+$"},
        "message": {"type": "string", "minLength": 1},
        "resource": {"type": "string"},
    },
    "additionalProperties": False,
}


def assert_error(response: Any, status: int, error_id: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    Draft4Validator(ERROR_SCHEMA).validate(body)
    assert body["id"] == error_id
    return body


def test_unknown_app_is_404_not_found(api: TestClient, auth: dict[str, str]) -> None:
    body = assert_error(api.get("/apps/no-such-app", headers=auth), 404, "not_found")
    assert body.get("resource", "app") == "app"
    assert_error(api.get(f"/apps/{uuid.uuid4()}", headers=auth), 404, "not_found")


@pytest.mark.parametrize("name", ["Bad_Name", "ab", "a" * 31, "1abc", "abc-"])
def test_bad_app_name_is_422_invalid_params(
    api: TestClient, auth: dict[str, str], name: str
) -> None:
    assert_error(api.post("/apps", headers=auth, json={"name": name}), 422, "invalid_params")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer undefined"}],
    ids=["no token", "unknown token", "undefined"],
)
def test_no_valid_token_is_401_unauthorized(api: TestClient, headers: dict[str, str]) -> None:
    for path in ("/account", "/apps", "/account/rate-limits"):
        assert_error(api.get(path, headers=headers), 401, "unauthorized")
