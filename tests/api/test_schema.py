"""Every response kiku's API gives validates against Heroku's published Platform API schema.

The schema shipped in `kiku/api/platform-api-schema.json` is Heroku's JSON Hyper-Schema
(draft-04, interagent extensions). Plain draft-04 validation of it is lenient: interagent's
`strictProperties` means nothing to a draft-04 validator, and nothing is `required`. So the
document is tightened before use (see `_tighten`): kiku promises the full shape of each
resource, exactly as Heroku's clients expect to read it.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4
from starlette.testclient import TestClient

import kiku.api
from kiku.platform import Platform
from kikutest import PASSWORD, FakeClock, bearer, login, signup

SCHEMA_PATH = Path(kiku.api.__file__).parent / "platform-api-schema.json"
BASE_URI = "http://api.heroku.com/schema"

# The one allowed deviation from Heroku's schema: its app URL patterns name heroku.com hosts
# (`https://git.heroku.com/NAME.git`, `https://NAME.herokuapp.com/`). A kiku serves git from
# its API host and apps under its own domain, so just these two patterns are swapped for
# kiku's equivalents; the name part of each stays Heroku's.
HEROKU_PATTERNS = {
    "git_url": r"^https://git\.heroku\.com/[a-z][a-z0-9-]{2,29}\.git$",
    "web_url": r"^https?://[a-z][a-z0-9-]{3,43}\.herokuapp\.com/$",
}
KIKU_PATTERNS = {
    "git_url": r"^https?://[^/]+/[a-z][a-z0-9-]{2,29}\.git$",
    "web_url": r"^https?://[a-z][a-z0-9-]{2,29}\.[^/]+/$",
}

# The resources kiku implements, each checked with all of its listed properties required.
RESOURCES = ("account", "oauth-authorization", "app", "collaborator", "rate-limit")


# -- the validator -------------------------------------------------------------------------


def _format_checker() -> FormatChecker:
    """draft-04's checkers plus strict ones for the formats the schema uses.

    jsonschema checks `uuid` only for newer drafts and `date-time`/`uri` only when optional
    packages are installed; without these, a malformed id or timestamp would pass silently.
    """
    checker = FormatChecker(formats=())
    checker.checkers.update(Draft4Validator.FORMAT_CHECKER.checkers)

    @checker.checks("uuid", raises=ValueError)
    def is_uuid(value: object) -> bool:
        # Canonical form only: lowercase, hyphenated, as Heroku sends ids.
        return not isinstance(value, str) or str(uuid.UUID(value)) == value

    rfc3339 = re.compile(
        r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
    )

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not rfc3339.match(value):
            return False
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # real dates only
        return True

    @checker.checks("email")
    def is_email(value: object) -> bool:
        return not isinstance(value, str) or bool(re.match(r"^[^@\s]+@[^@\s]+$", value))

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc) and not re.search(r"\s", value)

    return checker


FORMATS = _format_checker()


def _require_all(node: dict[str, Any]) -> None:
    if node["properties"]:  # draft-04 forbids an empty `required`
        node["required"] = sorted(node["properties"])
    node["additionalProperties"] = False


def _tighten(node: Any) -> Any:
    """Every object schema marked `strictProperties` requires all its properties, no others."""
    if isinstance(node, list):
        return [_tighten(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _tighten(value) for key, value in node.items()}
    if node.get("strictProperties") is True and isinstance(node.get("properties"), dict):
        _require_all(node)
    return node


def load_schema(*, kiku_patterns: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = _tighten(json.loads(SCHEMA_PATH.read_text()))
    for resource in document["definitions"].values():
        # A resource's top level lists the shape kiku promises in full, strict or not.
        if isinstance(resource.get("properties"), dict):
            _require_all(resource)
    app = document["definitions"]["app"]["definitions"]
    for field, heroku in HEROKU_PATTERNS.items():
        assert app[field]["pattern"] == heroku, f"Heroku's {field} pattern changed"
        if kiku_patterns:
            app[field]["pattern"] = KIKU_PATTERNS[field]
    return document


def make_validators(document: dict[str, Any]) -> dict[str, Draft4Validator]:
    Draft4Validator.check_schema(document)
    registry: Registry[Any] = Registry().with_resource(BASE_URI, DRAFT4.create_resource(document))
    return {
        name: Draft4Validator(
            {"$ref": f"{BASE_URI}#/definitions/{name}"}, registry=registry, format_checker=FORMATS
        )
        for name in RESOURCES
    }


VALIDATORS = make_validators(load_schema())


def problems(resource: str, body: Any, validators: dict[str, Draft4Validator] = VALIDATORS) -> str:
    """Every way `body` breaks the schema of `resource`, one per line ('' when it fits)."""
    errors = sorted(validators[resource].iter_errors(body), key=lambda e: list(e.absolute_path))
    return "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors
    )


def assert_valid(resource: str, body: Any) -> None:
    found = problems(resource, body)
    assert not found, f"{resource} body does not fit Heroku's schema:\n{found}\n{body!r}"


def assert_valid_list(resource: str, body: Any) -> None:
    assert isinstance(body, list), body
    assert body, "a list that should hold items is empty"
    for item in body:
        assert_valid(resource, item)


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
