"""Platform API conventions every response follows (HEROKU_BEHAVIOUR §10)."""

import uuid

import pytest
from starlette.testclient import TestClient

from kiku.api import create_app
from kiku.platform import Platform
from kiku.settings import Settings
from kikutest import FakeClock, bearer, login, signup


@pytest.fixture
def token(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    return bearer(login(api, signup(platform, "dev@example.com"), clock))


def test_every_response_has_a_request_id(api: TestClient, token: dict[str, str]) -> None:
    for response in (
        api.get("/account", headers=token),
        api.get("/account"),
        api.get("/apps/nope", headers=token),
        api.get("/no/such/endpoint", headers=token),
        api.get("/account", headers={**token, "Accept": "application/vnd.heroku+json; version=2"}),
    ):
        uuid.UUID(response.headers["Request-Id"])
        assert "RateLimit-Remaining" in response.headers
        assert response.headers["content-type"].startswith("application/json")
        assert set(response.json()) >= {"id"} or response.status_code < 400


@pytest.mark.parametrize(
    "version", ["3", "3.sdk", "3.account-quotas", "3.cedar-acm", "3.run-inside"]
)
def test_version_3_variants_are_accepted(
    api: TestClient, token: dict[str, str], version: str
) -> None:
    accept = {"Accept": f"application/vnd.heroku+json; version={version}"}
    assert api.get("/account", headers={**token, **accept}).status_code == 200


def test_other_versions_are_406(api: TestClient, token: dict[str, str]) -> None:
    accept = {"Accept": "application/vnd.heroku+json; version=2"}
    response = api.get("/account", headers={**token, **accept})
    assert response.status_code == 406
    assert response.json()["id"] == "not_acceptable"


def test_rate_limit_counts_down_and_rate_limits_endpoint_is_free(
    api: TestClient, token: dict[str, str]
) -> None:
    first = int(api.get("/account", headers=token).headers["RateLimit-Remaining"])
    second = int(api.get("/account", headers=token).headers["RateLimit-Remaining"])
    assert second == first - 1
    free = api.get("/account/rate-limits", headers=token)
    assert free.json() == {"remaining": second}
    assert api.get("/account/rate-limits", headers=token).json() == {"remaining": second}


def test_rate_limit_429_then_refill(
    platform: Platform, clock: FakeClock, settings: Settings
) -> None:
    limited = Platform.build(settings.with_(rate_limit_per_hour=5), clock=clock)
    try:
        with TestClient(create_app(limited), headers={"Accept": "application/json"}) as api:
            token = bearer(login(api, signup(limited, "dev@example.com"), clock))
            clock.advance(3600)  # login's clock step spent part of the hour; start full
            statuses = [api.get("/account", headers=token).status_code for _ in range(6)]
            assert statuses == [200] * 5 + [429]
            refused = api.get("/account", headers=token)
            assert refused.json()["id"] == "rate_limit"
            assert refused.headers["RateLimit-Remaining"] == "0"
            clock.advance(720)  # one request every 12 minutes at 5/hour
            assert api.get("/account", headers=token).status_code == 200
    finally:
        limited.close()


def test_etag_and_if_none_match(api: TestClient, token: dict[str, str]) -> None:
    api.post("/apps", headers=token, json={"name": "tagged"})
    first = api.get("/apps/tagged", headers=token)
    etag = first.headers["ETag"]
    again = api.get("/apps/tagged", headers={**token, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    api.patch("/apps/tagged", headers=token, json={"maintenance": True})
    changed = api.get("/apps/tagged", headers={**token, "If-None-Match": etag})
    assert changed.status_code == 200


def test_errors_are_id_and_message(api: TestClient, token: dict[str, str]) -> None:
    bad_body = api.patch("/apps/x", headers=token, content=b"{not json")
    assert bad_body.status_code in (404, 422)
    invalid = api.post("/apps", headers=token, json={"name": 5})
    assert invalid.status_code == 422
    assert invalid.json()["id"] == "invalid_params"
    assert "name" in invalid.json()["message"]


def test_cors_from_any_origin(api: TestClient) -> None:
    response = api.options(
        "/apps",
        headers={"Origin": "http://dashboard.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "http://dashboard.example")


def test_schema_is_served(api: TestClient) -> None:
    response = api.get("/schema")
    assert response.status_code == 200
    assert "app" in response.json()["definitions"]
