"""Custom domains and SNI endpoints (certificates): shapes, rules, who may touch them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4
from starlette.testclient import TestClient

from certkit import TestCA, self_signed
from kiku.platform import Platform
from kikutest import FakeClock, bearer, login, signup
from schemacheck import BASE_URI, FORMATS, load_schema, problems


def _validators() -> dict[str, Draft4Validator]:
    document = copy.deepcopy(load_schema())
    # Heroku's own example hostname ("subdomain.example.com") is no URI: hostnames are bare.
    del document["definitions"]["domain"]["definitions"]["hostname"]["format"]
    registry: Registry[Any] = Registry().with_resource(BASE_URI, DRAFT4.create_resource(document))
    return {
        name: Draft4Validator(
            {"$ref": f"{BASE_URI}#/definitions/{name}"}, registry=registry, format_checker=FORMATS
        )
        for name in ("domain", "sni-endpoint")
    }


VALIDATORS = _validators()


def fits(resource: str, body: Any) -> None:
    found = problems(resource, body, VALIDATORS)
    assert not found, f"{resource} body does not fit Heroku's schema:\n{found}\n{body!r}"


@pytest.fixture
def owner(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    headers = bearer(login(api, signup(platform, "owner@example.com"), clock))
    assert api.post("/apps", headers=headers, json={"name": "shop"}).status_code == 201
    return headers


@pytest.fixture
def stranger(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    return bearer(login(api, signup(platform, "stranger@example.com"), clock))


def test_list_has_the_default_domain_then_custom_ones(
    api: TestClient, owner: dict[str, str]
) -> None:
    listed = api.get("/apps/shop/domains", headers=owner).json()
    assert [(d["hostname"], d["kind"]) for d in listed] == [("shop.localhost", "heroku")]
    fits("domain", listed[0])
    added = api.post("/apps/shop/domains", headers=owner, json={"hostname": "WWW.Example.com."})
    assert added.status_code == 201
    body = added.json()
    fits("domain", body)
    assert body["hostname"] == "www.example.com" and body["kind"] == "custom"
    assert body["cname"] == "shop.localhost" and body["sni_endpoint"] is None
    listed = api.get("/apps/shop/domains", headers=owner).json()
    assert sorted(d["hostname"] for d in listed) == ["shop.localhost", "www.example.com"]
    for d in listed:
        fits("domain", d)


def test_get_by_id_or_hostname_and_delete(api: TestClient, owner: dict[str, str]) -> None:
    made = api.post("/apps/shop/domains", headers=owner, json={"hostname": "a.example.com"}).json()
    assert api.get(f"/apps/shop/domains/{made['id']}", headers=owner).json() == made
    assert api.get("/apps/shop/domains/a.example.com", headers=owner).json() == made
    default = api.get("/apps/shop/domains/shop.localhost", headers=owner)
    assert default.status_code == 200 and default.json()["kind"] == "heroku"
    removed = api.delete("/apps/shop/domains/a.example.com", headers=owner)
    assert removed.status_code == 200 and removed.json()["id"] == made["id"]
    missing = api.get("/apps/shop/domains/a.example.com", headers=owner)
    assert missing.status_code == 404 and missing.json()["id"] == "not_found"
    refused = api.delete("/apps/shop/domains/shop.localhost", headers=owner)
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("hostname", "says"),
    [
        ("example", "not a valid hostname"),
        ("-bad.example.com", "not a valid hostname"),
        ("bad-.example.com", "not a valid hostname"),
        ("a..example.com", "not a valid hostname"),
        ("under_score.example.com", "not a valid hostname"),
        ("*.com", "not a valid hostname"),
        ("www.*.example.com", "not a valid hostname"),
        ("x" * 64 + ".example.com", "not a valid hostname"),
        ("http://www.example.com", "without scheme, port or path"),
        ("www.example.com:443", "without scheme, port or path"),
        ("10.0.0.1", "IP address"),
        ("other.localhost", "platform's own domain"),
        ("localhost", "not a valid hostname"),
    ],
)
def test_bad_hostnames_are_422_saying_why(
    api: TestClient, owner: dict[str, str], hostname: str, says: str
) -> None:
    response = api.post("/apps/shop/domains", headers=owner, json={"hostname": hostname})
    assert response.status_code == 422, response.text
    assert response.json()["id"] == "invalid_params"
    assert says in response.json()["message"]


def test_wildcards_are_allowed(api: TestClient, owner: dict[str, str]) -> None:
    response = api.post("/apps/shop/domains", headers=owner, json={"hostname": "*.example.org"})
    assert response.status_code == 201
    assert response.json()["hostname"] == "*.example.org"


def test_a_hostname_belongs_to_one_app(
    api: TestClient, owner: dict[str, str], platform: Platform, clock: FakeClock
) -> None:
    other = bearer(login(api, signup(platform, "other@example.com"), clock))
    api.post("/apps", headers=other, json={"name": "elsewhere"})
    api.post("/apps/shop/domains", headers=owner, json={"hostname": "www.example.com"})
    again = api.post("/apps/shop/domains", headers=owner, json={"hostname": "www.example.com"})
    assert again.status_code == 422 and "already added to shop" in again.json()["message"]
    theirs = api.post(
        "/apps/elsewhere/domains", headers=other, json={"hostname": "www.example.com"}
    )
    assert theirs.status_code == 422
    assert theirs.json()["message"] == "www.example.com is already in use by another app."


def test_only_members_see_or_change_domains(
    api: TestClient,
    owner: dict[str, str],
    stranger: dict[str, str],
    platform: Platform,
    clock: FakeClock,
) -> None:
    assert api.get("/apps/shop/domains", headers=stranger).status_code == 403
    post = api.post("/apps/shop/domains", headers=stranger, json={"hostname": "x.example.com"})
    assert post.status_code == 403
    assert api.get("/apps/shop/sni-endpoints", headers=stranger).status_code == 403
    assert api.get("/apps/shop/domains").status_code == 401
    api.post("/apps/shop/collaborators", headers=owner, json={"user": "stranger@example.com"})
    post = api.post("/apps/shop/domains", headers=stranger, json={"hostname": "x.example.com"})
    assert post.status_code == 201


def test_certs_add_ties_the_domains_it_covers(api: TestClient, owner: dict[str, str]) -> None:
    for host in ("www.example.com", "api.example.com", "www.other.net"):
        api.post("/apps/shop/domains", headers=owner, json={"hostname": host})
    pem = TestCA().issue("*.example.com", "example.com")
    response = api.post(
        "/apps/shop/sni-endpoints",
        headers=owner,
        json={"certificate_chain": pem.cert, "private_key": pem.key},
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    fits("sni-endpoint", endpoint)
    assert "private_key" not in endpoint
    assert endpoint["ssl_cert"]["cert_domains"] == ["*.example.com", "example.com"]
    assert endpoint["ssl_cert"]["ca_signed?"] is True
    domains = {d["hostname"]: d for d in api.get("/apps/shop/domains", headers=owner).json()}
    tied = {h for h, d in domains.items() if d["sni_endpoint"]}
    assert tied == {"www.example.com", "api.example.com"}
    assert domains["www.example.com"]["sni_endpoint"]["name"] == endpoint["name"]
    assert sorted(endpoint["domains"]) == sorted(
        domains[h]["id"] for h in ("www.example.com", "api.example.com")
    )
    by_name = api.get(f"/apps/shop/sni-endpoints/{endpoint['name']}", headers=owner).json()
    assert by_name["id"] == endpoint["id"]
    listed = api.get("/apps/shop/sni-endpoints", headers=owner).json()
    assert [e["id"] for e in listed] == [endpoint["id"]]

    other = self_signed("www.other.net")
    patched = api.patch(
        f"/apps/shop/sni-endpoints/{endpoint['id']}",
        headers=owner,
        json={"certificate_chain": other.cert, "private_key": other.key},
    ).json()
    fits("sni-endpoint", patched)
    assert patched["ssl_cert"]["self_signed?"] is True
    assert len(patched["domains"]) == 3  # the ones tied before stay tied

    gone = api.delete(f"/apps/shop/sni-endpoints/{endpoint['id']}", headers=owner)
    assert gone.status_code == 200
    domains = {d["hostname"]: d for d in api.get("/apps/shop/domains", headers=owner).json()}
    assert all(d["sni_endpoint"] is None for d in domains.values())


def test_a_domain_can_name_its_endpoint(api: TestClient, owner: dict[str, str]) -> None:
    pem = self_signed("shop.example.com")
    endpoint = api.post(
        "/apps/shop/sni-endpoints",
        headers=owner,
        json={"certificate_chain": pem.cert, "private_key": pem.key},
    ).json()
    made = api.post(
        "/apps/shop/domains",
        headers=owner,
        json={"hostname": "shop.example.com", "sni_endpoint": endpoint["name"]},
    ).json()
    assert made["sni_endpoint"] == {"id": endpoint["id"], "name": endpoint["name"]}
    cleared = api.patch(
        "/apps/shop/domains/shop.example.com", headers=owner, json={"sni_endpoint": None}
    ).json()
    assert cleared["sni_endpoint"] is None
    unknown = api.post(
        "/apps/shop/domains",
        headers=owner,
        json={"hostname": "x.example.com", "sni_endpoint": "no-such-endpoint"},
    )
    assert unknown.status_code == 422


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("not pem", "not PEM"),
        ("wrong key", "does not match"),
        ("expired", "expired"),
        ("bad key", "not a PEM private key"),
    ],
)
def test_bad_certificates_are_422(
    api: TestClient, owner: dict[str, str], case: str, says: str
) -> None:
    ca = TestCA()
    good, other = ca.issue("a.example.com"), ca.issue("b.example.com")
    chain, key = good.cert, good.key
    if case == "not pem":
        chain = "hello"
    elif case == "wrong key":
        key = other.key
    elif case == "expired":
        old = ca.issue("a.example.com", days=-1, start_days=-10)
        chain, key = old.cert, old.key
    elif case == "bad key":
        key = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
    response = api.post(
        "/apps/shop/sni-endpoints",
        headers=owner,
        json={"certificate_chain": chain, "private_key": key},
    )
    assert response.status_code == 422, response.text
    assert says in response.json()["message"]
    assert "PRIVATE KEY" not in response.json()["message"]
