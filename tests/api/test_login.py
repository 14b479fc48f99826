"""The two-step login at POST /oauth/authorizations, and the tokens it hands out."""

import pyotp
from starlette.testclient import TestClient

from kiku.platform import Platform
from kikutest import PASSWORD, FakeClock, bearer, login, signup

YEAR = 365 * 24 * 3600


def _post(api: TestClient, email: str, password: str, code: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Heroku-Two-Factor-Code": code} if code else {}
    return api.post("/oauth/authorizations", auth=(email, password), headers=headers, json={})


def test_password_alone_is_not_enough(api: TestClient, platform: Platform) -> None:
    signup(platform, "dev@example.com")
    response = _post(api, "dev@example.com", PASSWORD)
    assert response.status_code == 403
    assert response.json()["id"] == "two_factor"


def test_wrong_code_is_refused(api: TestClient, platform: Platform, clock: FakeClock) -> None:
    enrolment = signup(platform, "dev@example.com")
    good = pyotp.TOTP(enrolment.totp_secret).at(int(clock()))
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = _post(api, "dev@example.com", PASSWORD, wrong)
    assert response.status_code == 403
    assert response.json()["id"] == "two_factor"


def test_password_and_code_give_a_token_for_a_year(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    enrolment = signup(platform, "dev@example.com")
    code = pyotp.TOTP(enrolment.totp_secret).at(int(clock()))
    response = _post(api, "dev@example.com", PASSWORD, code)
    assert response.status_code == 201
    body = response.json()
    assert body["access_token"]["token"].startswith("HRKU-")
    assert body["access_token"]["expires_in"] == YEAR
    assert body["user"]["email"] == "dev@example.com"
    account = api.get("/account", headers=bearer(body["access_token"]["token"]))
    assert account.json()["email"] == "dev@example.com"
    assert account.json()["two_factor_authentication"] is True


def test_a_code_works_only_once(api: TestClient, platform: Platform, clock: FakeClock) -> None:
    enrolment = signup(platform, "dev@example.com")
    code = pyotp.TOTP(enrolment.totp_secret).at(int(clock()))
    assert _post(api, "dev@example.com", PASSWORD, code).status_code == 201
    again = _post(api, "dev@example.com", PASSWORD, code)
    assert again.status_code == 403 and again.json()["id"] == "two_factor"


def test_wrong_password_is_401_whatever_the_code(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    enrolment = signup(platform, "dev@example.com")
    code = pyotp.TOTP(enrolment.totp_secret).at(int(clock()))
    response = _post(api, "dev@example.com", "wrong password", code)
    assert response.status_code == 401
    assert response.json()["id"] == "unauthorized"
    assert _post(api, "nobody@example.com", PASSWORD, code).status_code == 401


def test_recovery_code_works_once_in_place_of_a_code(api: TestClient, platform: Platform) -> None:
    enrolment = signup(platform, "dev@example.com")
    recovery = enrolment.recovery_codes[0]
    assert len(enrolment.recovery_codes) == 10
    assert _post(api, "dev@example.com", PASSWORD, recovery.upper()).status_code == 201
    assert _post(api, "dev@example.com", PASSWORD, recovery).status_code == 403
    assert _post(api, "dev@example.com", PASSWORD, enrolment.recovery_codes[1]).status_code == 201


def test_regenerating_recovery_codes_needs_the_second_factor(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    enrolment = signup(platform, "dev@example.com")
    token = login(api, enrolment, clock)
    refused = api.post("/account/recovery-codes", headers=bearer(token))
    assert refused.status_code == 403
    code = pyotp.TOTP(enrolment.totp_secret).at(int(clock()))
    fresh = api.post(
        "/account/recovery-codes", headers={**bearer(token), "Heroku-Two-Factor-Code": code}
    )
    assert fresh.status_code == 201 and len(fresh.json()) == 10
    old = enrolment.recovery_codes[0]
    assert _post(api, "dev@example.com", PASSWORD, old).status_code == 403
    assert _post(api, "dev@example.com", PASSWORD, fresh.json()[0]).status_code == 201


def test_token_expires(api: TestClient, platform: Platform, clock: FakeClock) -> None:
    enrolment = signup(platform, "dev@example.com")
    token = login(api, enrolment, clock)
    clock.advance(YEAR - 3600)
    assert api.get("/account", headers=bearer(token)).status_code == 200
    clock.advance(3600)
    expired = api.get("/account", headers=bearer(token))
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"]


def test_shorter_lifetime_can_be_asked_for_never_longer(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    enrolment = signup(platform, "dev@example.com")
    token = login(api, enrolment, clock)
    short = api.post("/oauth/authorizations", headers=bearer(token), json={"expires_in": 60})
    assert short.status_code == 201 and short.json()["access_token"]["expires_in"] == 60
    long = api.post("/oauth/authorizations", headers=bearer(token), json={"expires_in": 10 * YEAR})
    assert long.json()["access_token"]["expires_in"] == YEAR
    clock.advance(61)
    assert (
        api.get("/account", headers=bearer(short.json()["access_token"]["token"])).status_code
        == 401
    )


def test_basic_auth_with_token_as_password_any_user(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    token = login(api, signup(platform, "dev@example.com"), clock)
    assert api.get("/account", auth=("", token)).status_code == 200
    assert api.get("/account", auth=("heroku", token)).status_code == 200
    assert api.get("/account", headers={"Authorization": "Bearer undefined"}).status_code == 401
    assert api.get("/account").status_code == 401
    assert api.get("/account", headers=bearer("HRKU-not-a-token")).status_code == 401


def test_listing_never_shows_tokens(api: TestClient, platform: Platform, clock: FakeClock) -> None:
    token = login(api, signup(platform, "dev@example.com"), clock)
    listed = api.get("/oauth/authorizations", headers=bearer(token)).json()
    assert len(listed) == 1
    assert token not in str(listed)
    assert listed[0]["access_token"]["token"].endswith(token[-6:])
    current = api.get("/oauth/authorizations/~", headers=bearer(token)).json()
    assert current["id"] == listed[0]["id"]


def test_revoking_and_logout(api: TestClient, platform: Platform, clock: FakeClock) -> None:
    enrolment = signup(platform, "dev@example.com")
    first, second = login(api, enrolment, clock), login(api, enrolment, clock)
    other = api.get("/oauth/authorizations/~", headers=bearer(second)).json()["id"]
    assert api.delete(f"/oauth/authorizations/{other}", headers=bearer(first)).status_code == 200
    assert api.get("/account", headers=bearer(second)).status_code == 401
    assert api.delete("/oauth/sessions/~", headers=bearer(first)).status_code == 200
    assert api.get("/account", headers=bearer(first)).status_code == 401


def test_other_users_authorizations_are_invisible(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    mine = login(api, signup(platform, "me@example.com"), clock)
    theirs = login(api, signup(platform, "them@example.com"), clock)
    their_id = api.get("/oauth/authorizations/~", headers=bearer(theirs)).json()["id"]
    assert api.get(f"/oauth/authorizations/{their_id}", headers=bearer(mine)).status_code == 404
    assert api.delete(f"/oauth/authorizations/{their_id}", headers=bearer(mine)).status_code == 404


def test_password_guessing_is_throttled(api: TestClient, platform: Platform) -> None:
    signup(platform, "dev@example.com")
    statuses = [_post(api, "dev@example.com", f"guess-{i}").status_code for i in range(31)]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429


def test_login_needs_credentials(api: TestClient) -> None:
    response = api.post("/oauth/authorizations", json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
