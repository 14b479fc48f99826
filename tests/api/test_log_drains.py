"""`/apps/{app}/log-drains`: shapes, validation, the limit of 5, who may touch them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from kiku.platform import Platform
from kikutest import FakeClock, bearer, login, signup
from schemacheck import assert_valid, assert_valid_list


@pytest.fixture
def owner(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    headers = bearer(login(api, signup(platform, "owner@example.com"), clock))
    assert api.post("/apps", headers=headers, json={"name": "shop"}).status_code == 201
    return headers


@pytest.fixture
def stranger(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    return bearer(login(api, signup(platform, "stranger@example.com"), clock))


def add(api: TestClient, headers: dict[str, str], url: str, app: str = "shop") -> dict[str, Any]:
    response = api.post(f"/apps/{app}/log-drains", headers=headers, json={"url": url})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_add_list_get_and_remove_fit_the_schema(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    assert api.get("/apps/shop/log-drains", headers=owner).json() == []
    url = "https://user:secret@logs.example.com/drain?key=k1"
    made = add(api, owner, url)
    assert_valid("log-drain", made)
    assert made["url"] == url
    assert made["token"].startswith("d.") and len(made["token"]) == 38
    assert made["addon"] is None and made["app"]["name"] == "shop"

    listed = api.get("/apps/shop/log-drains", headers=owner)
    assert listed.status_code == 200
    assert_valid_list("log-drain", listed.json())
    for identity in (made["id"], made["token"], url):
        got = api.get(f"/apps/shop/log-drains/{quote(identity, safe='')}", headers=owner)
        assert got.status_code == 200, (identity, got.text)
        assert_valid("log-drain", got.json())
        assert got.json()["id"] == made["id"]

    gone = api.delete(f"/apps/shop/log-drains/{quote(url, safe='')}", headers=owner)
    assert gone.status_code == 200
    assert_valid("log-drain", gone.json())
    assert api.get("/apps/shop/log-drains", headers=owner).json() == []
    missing = api.get(f"/apps/shop/log-drains/{made['token']}", headers=owner)
    assert missing.status_code == 404
    assert missing.json()["id"] == "not_found"


def test_changes_show_in_the_apps_stream_without_secrets(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    made = add(api, owner, "https://user:secret@logs.example.com/drain?key=k1")
    api.delete(f"/apps/shop/log-drains/{made['id']}", headers=owner)
    lines = platform.logplex.history(made["app"]["id"], 10, dyno="api")
    messages = [line.message for line in lines]
    assert messages[-2:] == [
        "Add drain https://***@logs.example.com/drain?*** by user owner@example.com",
        "Remove drain https://***@logs.example.com/drain?*** by user owner@example.com",
    ]
    assert not any("secret" in m or "k1" in m for m in messages)


def test_remove_by_token(api: TestClient, owner: dict[str, str]) -> None:
    made = add(api, owner, "syslog+tls://logs.example.com:6514")
    assert api.delete(f"/apps/shop/log-drains/{made['token']}", headers=owner).status_code == 200
    assert api.get("/apps/shop/log-drains", headers=owner).json() == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://logs.example.com/", "the scheme must be syslog://, syslog+tls://, https://"),
        ("syslog://logs.example.com", "syslog drains need a port"),
        ("https://", "names no host"),
        ("syslog://logs.example.com:70000", "Port out of range"),
        (" https://logs.example.com", "cannot be empty or contain spaces"),
    ],
)
def test_bad_urls_are_422_saying_why(
    api: TestClient, owner: dict[str, str], url: str, says: str
) -> None:
    response = api.post("/apps/shop/log-drains", headers=owner, json={"url": url})
    assert response.status_code == 422
    assert response.json()["id"] == "invalid_params"
    assert says in response.json()["message"]


def test_url_is_required(api: TestClient, owner: dict[str, str]) -> None:
    response = api.post("/apps/shop/log-drains", headers=owner, json={})
    assert response.status_code == 422
    assert "url" in response.json()["message"]


def test_at_most_five_drains_and_no_duplicates(api: TestClient, owner: dict[str, str]) -> None:
    for n in range(5):
        add(api, owner, f"syslog://logs{n}.example.com:514")
    again = api.post(
        "/apps/shop/log-drains", headers=owner, json={"url": "syslog://logs0.example.com:514"}
    )
    assert again.status_code == 422
    assert "already added to shop" in again.json()["message"]
    sixth = api.post(
        "/apps/shop/log-drains", headers=owner, json={"url": "syslog://logs9.example.com:514"}
    )
    assert sixth.status_code == 422
    assert sixth.json()["message"].startswith("shop has 5 log drains, the most an app may")
    assert len(api.get("/apps/shop/log-drains", headers=owner).json()) == 5


def test_others_cannot_see_or_touch_an_apps_drains(
    api: TestClient, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    made = add(api, owner, "syslog://logs.example.com:514")
    for response in (
        api.get("/apps/shop/log-drains", headers=stranger),
        api.get(f"/apps/shop/log-drains/{made['id']}", headers=stranger),
        api.delete(f"/apps/shop/log-drains/{made['id']}", headers=stranger),
        api.post("/apps/shop/log-drains", headers=stranger, json={"url": "syslog://x.io:1"}),
    ):
        assert response.status_code == 403  # Heroku's answer for someone else's app
    assert api.get("/apps/shop/log-drains").status_code == 401
    assert len(api.get("/apps/shop/log-drains", headers=owner).json()) == 1


def test_a_drain_of_another_app_is_not_found(api: TestClient, owner: dict[str, str]) -> None:
    assert api.post("/apps", headers=owner, json={"name": "blog"}).status_code == 201
    made = add(api, owner, "syslog://logs.example.com:514", app="blog")
    response = api.delete(f"/apps/shop/log-drains/{made['id']}", headers=owner)
    assert response.status_code == 404
