"""Releases and config vars in-process: numbering, descriptions, rules, rollback."""

import pytest
from starlette.testclient import TestClient

from kiku.apps.config import KEY_RULE
from kiku.platform import Platform
from kikutest import FakeClock, bearer, login, signup
from schemacheck import assert_valid, assert_valid_list


@pytest.fixture
def token(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    headers = bearer(login(api, signup(platform, "dev@example.com"), clock))
    api.post("/apps", headers=headers, json={"name": "rel"})
    return headers


def releases(api: TestClient, token: dict[str, str]) -> list[dict[str, object]]:
    response = api.get("/apps/rel/releases", headers={**token, "Range": "version ..; order=desc"})
    body: list[dict[str, object]] = response.json()
    return body


def test_new_app_has_v1_initial_release(api: TestClient, token: dict[str, str]) -> None:
    [v1] = releases(api, token)
    assert_valid("release", v1)
    assert (v1["version"], v1["description"], v1["status"]) == (1, "Initial release", "succeeded")
    assert v1["current"] is True and v1["eligible_for_rollback"] is False
    assert v1["user"] == {"email": "dev@example.com", "id": v1["user"]["id"]}  # type: ignore[index]


def test_config_changes_make_releases_described_as_heroku(
    api: TestClient, token: dict[str, str]
) -> None:
    set_ = api.patch("/apps/rel/config-vars", headers=token, json={"FOO": "1", "BAR": "two"})
    assert set_.json() == {"FOO": "1", "BAR": "two"}
    unchanged = api.patch("/apps/rel/config-vars", headers=token, json={"FOO": "1"})
    assert unchanged.status_code == 200
    removed = api.patch("/apps/rel/config-vars", headers=token, json={"FOO": None})
    assert removed.json() == {"BAR": "two"}
    described = [(r["version"], r["description"]) for r in releases(api, token)]
    assert described == [
        (3, "Remove FOO config vars"),
        (2, "Set FOO, BAR config vars"),
        (1, "Initial release"),
    ]
    assert api.get("/apps/rel/releases/2/config-vars", headers=token).json() == {
        "FOO": "1",
        "BAR": "two",
    }
    assert api.get("/apps/rel/releases/v3", headers=token).json()["version"] == 3
    assert_valid_list("release", releases(api, token))


@pytest.mark.parametrize("key", ["1BAD", "has-dash", "HEROKU_APP", "__X", "sp ace"])
def test_bad_keys_are_422_with_the_rule(api: TestClient, token: dict[str, str], key: str) -> None:
    response = api.patch("/apps/rel/config-vars", headers=token, json={key: "x"})
    assert response.status_code == 422
    assert KEY_RULE in response.json()["message"]
    assert api.get("/apps/rel/config-vars", headers=token).json() == {}


def test_config_is_limited_to_32_kb(api: TestClient, token: dict[str, str]) -> None:
    response = api.patch("/apps/rel/config-vars", headers=token, json={"BIG": "x" * 33000})
    assert response.status_code == 422
    assert "32 kB" in response.json()["message"]


def test_config_body_must_be_an_object(api: TestClient, token: dict[str, str]) -> None:
    response = api.patch("/apps/rel/config-vars", headers=token, json=["FOO"])
    assert response.status_code == 422


def test_rollback_restores_config_and_is_a_new_release(
    api: TestClient, token: dict[str, str]
) -> None:
    api.patch("/apps/rel/config-vars", headers=token, json={"A": "1"})
    api.patch("/apps/rel/config-vars", headers=token, json={"A": "2", "B": "3"})
    v2 = api.get("/apps/rel/releases/2", headers=token).json()
    rolled = api.post("/apps/rel/releases", headers=token, json={"release": v2["id"]})
    assert rolled.status_code == 201
    assert (rolled.json()["version"], rolled.json()["description"]) == (4, "Rollback to v2")
    assert api.get("/apps/rel/config-vars", headers=token).json() == {"A": "1"}
    assert releases(api, token)[0]["current"] is True


def test_release_paging_by_version(api: TestClient, token: dict[str, str]) -> None:
    for i in range(5):
        api.patch("/apps/rel/config-vars", headers=token, json={"N": str(i)})
    first = api.get(
        "/apps/rel/releases", headers={**token, "Range": "version ..; max=2, order=desc"}
    )
    assert [r["version"] for r in first.json()] == [6, 5]
    assert first.status_code == 206
    rest = api.get("/apps/rel/releases", headers={**token, "Range": first.headers["Next-Range"]})
    assert [r["version"] for r in rest.json()] == [4, 3]


def test_unknown_release_and_empty_rollback_body(api: TestClient, token: dict[str, str]) -> None:
    assert api.get("/apps/rel/releases/v99", headers=token).status_code == 404
    assert api.post("/apps/rel/releases", headers=token, json={}).status_code == 422


def test_buildpack_installations(api: TestClient, token: dict[str, str]) -> None:
    assert api.get("/apps/rel/buildpack-installations", headers=token).json() == []
    updates = {"updates": [{"buildpack": "heroku-community/apt"}, {"buildpack": "kiku/python"}]}
    listed = api.put("/apps/rel/buildpack-installations", headers=token, json=updates).json()
    assert [b["buildpack"]["url"] for b in listed] == ["heroku-community/apt", "kiku/python"]
    assert [b["ordinal"] for b in listed] == [0, 1]
    assert_valid_list("buildpack-installation", listed)
    bad = api.put(
        "/apps/rel/buildpack-installations",
        headers=token,
        json={"updates": [{"buildpack": "nonsense"}]},
    )
    assert bad.status_code == 422 and "git URL" in bad.json()["message"]


def test_stacks(api: TestClient, token: dict[str, str]) -> None:
    stacks = api.get("/stacks", headers=token).json()
    assert [s["name"] for s in stacks] == ["kiku-24"] and stacks[0]["default"]
    assert_valid_list("stack", stacks)
    assert api.get("/stacks/kiku-24", headers=token).json()["name"] == "kiku-24"
    assert api.get("/stacks/cedar-14", headers=token).status_code == 404
    assert api.get("/apps/rel/available-stacks", headers=token).json() == stacks
    assert api.patch("/apps/rel", headers=token, json={"build_stack": "kiku-24"}).status_code == 200
    assert (
        api.patch("/apps/rel", headers=token, json={"build_stack": "heroku-18"}).status_code == 422
    )


def test_labs_features(api: TestClient, token: dict[str, str]) -> None:
    listed = api.get("/apps/rel/features", headers=token).json()
    by_name = {f["name"]: f for f in listed}
    assert {"runtime-dyno-metadata", "log-runtime-metrics"} <= by_name.keys()
    assert by_name["runtime-dyno-metadata"]["enabled"] is False
    assert_valid_list("app-feature", listed)
    on = api.patch(
        "/apps/rel/features/runtime-dyno-metadata", headers=token, json={"enabled": True}
    )
    assert on.json()["enabled"] is True
    assert api.get("/apps/rel/features/runtime-dyno-metadata", headers=token).json()["enabled"]
    assert api.get("/apps/rel/features/no-such-feature", headers=token).status_code == 404
    # `heroku labs` also lists account features: kiku has none, and says where app ones are.
    assert api.get("/account/features", headers=token).json() == []
    missing = api.patch("/account/features/x", headers=token, json={"enabled": True})
    assert missing.status_code == 404 and "kiku features" in missing.json()["message"]
    assert api.get("/account/features").status_code == 401
