"""Apps: names, ownership, collaborators, paging."""

import pytest
from starlette.testclient import TestClient

from kiku.apps.names import RULE
from kiku.platform import Platform
from kikutest import FakeClock, bearer, login, signup


@pytest.fixture
def owner(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    return bearer(login(api, signup(platform, "owner@example.com"), clock))


@pytest.fixture
def stranger(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    return bearer(login(api, signup(platform, "stranger@example.com"), clock))


def test_create_with_a_name(api: TestClient, owner: dict[str, str]) -> None:
    response = api.post("/apps", headers=owner, json={"name": "my-app"})
    assert response.status_code == 201
    app = response.json()
    assert app["name"] == "my-app"
    assert app["web_url"] == "http://my-app.localhost:8080/"
    assert app["git_url"] == "http://127.0.0.1:5100/my-app.git"
    assert app["owner"]["email"] == "owner@example.com"
    assert app["stack"]["name"] == "kiku-24"


def test_create_without_a_name_generates_one(api: TestClient, owner: dict[str, str]) -> None:
    first = api.post("/apps", headers=owner).json()["name"]
    second = api.post("/apps", headers=owner, json={}).json()["name"]
    assert first != second
    assert len(first.split("-")) == 3


@pytest.mark.parametrize("name", ["ab", "My-App", "1app", "app-", "my_app", "a" * 31])
def test_bad_names_are_422_with_the_rule(api: TestClient, owner: dict[str, str], name: str) -> None:
    response = api.post("/apps", headers=owner, json={"name": name})
    assert response.status_code == 422
    assert response.json() == {"id": "invalid_params", "message": RULE}


def test_names_are_unique(api: TestClient, owner: dict[str, str], stranger: dict[str, str]) -> None:
    api.post("/apps", headers=owner, json={"name": "taken"})
    response = api.post("/apps", headers=stranger, json={"name": "taken"})
    assert response.status_code == 422
    assert response.json()["message"] == "Name is already taken"


def test_unknown_region_or_stack_is_refused(api: TestClient, owner: dict[str, str]) -> None:
    assert api.post("/apps", headers=owner, json={"region": "eu"}).status_code == 422
    assert api.post("/apps", headers=owner, json={"stack": "cedar-14"}).status_code == 422


def test_address_by_name_or_id(api: TestClient, owner: dict[str, str]) -> None:
    app = api.post("/apps", headers=owner, json={"name": "by-either"}).json()
    assert api.get(f"/apps/{app['id']}", headers=owner).json()["name"] == "by-either"
    assert api.get("/apps/by-either", headers=owner).json()["id"] == app["id"]


def test_unknown_app_is_404(api: TestClient, owner: dict[str, str]) -> None:
    response = api.get("/apps/no-such-app", headers=owner)
    assert response.status_code == 404
    assert response.json()["id"] == "not_found"


def test_other_users_app_is_403_and_untouchable(
    api: TestClient, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    api.post("/apps", headers=owner, json={"name": "private"})
    for method in ("GET", "PATCH", "DELETE"):
        response = api.request(method, "/apps/private", headers=stranger, json={})
        assert response.status_code == 403, method
        assert response.json()["id"] == "forbidden"
    assert api.get("/apps/private/collaborators", headers=stranger).status_code == 403
    assert api.get("/apps", headers=stranger).json() == []
    assert api.get("/apps/private", headers=owner).status_code == 200


def test_collaborators_see_and_change_but_cannot_destroy_or_rename(
    api: TestClient, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    api.post("/apps", headers=owner, json={"name": "shared"})
    added = api.post(
        "/apps/shared/collaborators", headers=owner, json={"user": "stranger@example.com"}
    )
    assert added.status_code == 201
    assert added.json()["role"] == "collaborator"
    assert [a["name"] for a in api.get("/apps", headers=stranger).json()] == ["shared"]
    patched = api.patch("/apps/shared", headers=stranger, json={"maintenance": True})
    assert patched.json()["maintenance"] is True
    assert api.patch("/apps/shared", headers=stranger, json={"name": "mine"}).status_code == 403
    assert api.delete("/apps/shared", headers=stranger).status_code == 403
    members = api.get("/apps/shared/collaborators", headers=owner).json()
    assert sorted(m["role"] for m in members) == ["collaborator", "owner"]
    again = api.post(
        "/apps/shared/collaborators", headers=owner, json={"user": "stranger@example.com"}
    )
    assert again.status_code == 422
    removed = api.delete("/apps/shared/collaborators/stranger@example.com", headers=owner)
    assert removed.status_code == 200
    assert api.get("/apps/shared", headers=stranger).status_code == 403
    assert (
        api.delete("/apps/shared/collaborators/owner@example.com", headers=owner).status_code == 422
    )


def test_adding_an_unknown_user_says_what_to_do(api: TestClient, owner: dict[str, str]) -> None:
    api.post("/apps", headers=owner, json={"name": "lonely"})
    response = api.post("/apps/lonely/collaborators", headers=owner, json={"user": "x@example.com"})
    assert response.status_code == 404
    assert "admin:create-user" in response.json()["message"]


def test_rename_changes_urls(api: TestClient, owner: dict[str, str]) -> None:
    api.post("/apps", headers=owner, json={"name": "old-name"})
    renamed = api.patch("/apps/old-name", headers=owner, json={"name": "new-name"}).json()
    assert renamed["git_url"].endswith("/new-name.git")
    assert renamed["web_url"] == "http://new-name.localhost:8080/"
    assert api.get("/apps/old-name", headers=owner).status_code == 404
    bad = api.patch("/apps/new-name", headers=owner, json={"name": "Bad Name"})
    assert bad.status_code == 422


def test_destroy(api: TestClient, owner: dict[str, str]) -> None:
    api.post("/apps", headers=owner, json={"name": "doomed"})
    assert api.delete("/apps/doomed", headers=owner).json()["name"] == "doomed"
    assert api.get("/apps/doomed", headers=owner).status_code == 404


def test_paging_walks_more_than_200_apps(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    with platform.store.session() as db:
        user = platform.accounts.authenticate(db, owner["Authorization"].split()[1]).user
        platform.apps.apps_per_account = 1000
        for i in range(250):
            platform.apps.create(db, user, f"app-{i:03}")
    first = api.get("/apps", headers=owner)
    assert first.status_code == 206
    assert len(first.json()) == 200
    assert first.headers["Accept-Ranges"] == "id, name"
    rest = api.get("/apps", headers={**owner, "Range": first.headers["Next-Range"]})
    assert rest.status_code == 200
    assert "Next-Range" not in rest.headers
    ids = [a["id"] for a in first.json() + rest.json()]
    assert len(ids) == len(set(ids)) == 250
    assert ids == sorted(ids)

    names: list[str] = []
    header = "name ..; order=desc,max=100;"
    while header:
        page = api.get("/apps", headers={**owner, "Range": header})
        names += [a["name"] for a in page.json()]
        header = page.headers.get("Next-Range", "")
    assert names == [f"app-{i:03}" for i in reversed(range(250))]


def test_range_by_unknown_field_is_416(api: TestClient, owner: dict[str, str]) -> None:
    response = api.get("/apps", headers={**owner, "Range": "version ..; max=10"})
    assert response.status_code == 416
    assert response.json()["id"] == "requested_range_not_satisfiable"


def test_app_limit_per_account(api: TestClient, owner: dict[str, str], platform: Platform) -> None:
    platform.apps.apps_per_account = 2
    assert api.post("/apps", headers=owner).status_code == 201
    assert api.post("/apps", headers=owner).status_code == 201
    refused = api.post("/apps", headers=owner)
    assert refused.status_code == 422
    assert "limit of 2 apps" in refused.json()["message"]
