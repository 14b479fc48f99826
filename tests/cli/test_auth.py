"""auth: login (with two-factor), logout, whoami, token."""

from __future__ import annotations

import base64
import json
import stat

import httpx

from cli.clitest import MACHINE, Kiku, reply
from kiku.cli.credentials import Credentials, NetrcCredentials

OTHER = "machine api.heroku.com\n  login me@example.com\n  password heroku-token\n"
AUTHORIZATION = {
    "id": "a-1",
    "scope": ["global"],
    "access_token": {"id": "t-1", "token": "HRKU-new", "expires_in": None},
    "user": {"id": "u-1", "email": "dev@example.com"},
}


def basic(request: httpx.Request) -> tuple[str, str]:
    scheme, _, value = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(value).decode().partition(":")
    return user, password


def two_factor_api(request: httpx.Request) -> httpx.Response:
    assert (request.method, request.url.path) == ("POST", "/oauth/authorizations")
    assert basic(request) == ("dev@example.com", "s3cret pass")
    if request.headers.get("Heroku-Two-Factor-Code") != "123456":
        return reply(403, {"id": "two_factor", "message": "Two-factor code is required."})
    return reply(201, AUTHORIZATION)


def stored(kiku: Kiku) -> Credentials | None:
    return NetrcCredentials(kiku.netrc, MACHINE).load()


def test_login_retries_with_the_two_factor_code(kiku: Kiku) -> None:
    kiku.netrc.write_text(OTHER)
    run = kiku("login", handler=two_factor_api, input="dev@example.com\ns3cret pass\n123456\n")
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[-1] == "Logged in as dev@example.com"
    assert "s3cret pass" not in run.output
    assert len(run.requests) == 2
    body = json.loads(run.requests[1].content)
    assert body["scope"] == ["global"]
    assert body["description"].startswith("kiku CLI login from ")
    assert stored(kiku) == Credentials("dev@example.com", "HRKU-new")
    assert kiku.netrc.read_text().startswith(OTHER)
    assert stat.S_IMODE(kiku.netrc.stat().st_mode) == 0o600


def test_login_interactive_flag_and_no_two_factor(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(201, AUTHORIZATION)

    run = kiku("login", "-i", handler=handler, input="dev@example.com\ns3cret pass\n")
    assert run.exit_code == 0, run.output
    assert "Logged in as dev@example.com" in run.stdout
    assert "Two-factor" not in run.output


def test_wrong_password_is_reported_and_nothing_saved(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(401, {"id": "unauthorized", "message": "Invalid credentials provided."})

    run = kiku("login", handler=handler, input="dev@example.com\nwrong\n")
    assert run.exit_code == 1
    assert "Error: Invalid credentials provided.\n" in run.stderr
    assert "Error ID: unauthorized" in run.stderr
    assert "Traceback" not in run.output
    assert stored(kiku) is None


def test_wrong_two_factor_code_is_reported(kiku: Kiku) -> None:
    run = kiku("login", handler=two_factor_api, input="dev@example.com\ns3cret pass\n000000\n")
    assert run.exit_code == 1
    assert "Error: Two-factor code is required." in run.stderr
    assert stored(kiku) is None


def test_logout_revokes_and_removes_only_our_entry(kiku: Kiku) -> None:
    kiku.netrc.write_text(OTHER)
    kiku.login_as(token="tok-123")
    kiku.netrc.write_text(OTHER + kiku.netrc.read_text())

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer tok-123"
        return reply(200, {})

    run = kiku("logout", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["DELETE /oauth/sessions/~"]
    assert "Logging out... done" in run.stderr
    assert kiku.netrc.read_text() == OTHER


def test_logout_forgets_the_token_even_if_the_server_fails(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    run = kiku("logout", handler=handler)
    assert run.exit_code == 0, run.output
    assert stored(kiku) is None


def test_logout_never_revokes_the_api_key(kiku: Kiku) -> None:
    run = kiku("logout", KIKU_API_KEY="env-key")
    assert run.exit_code == 0, run.output
    assert run.requests == []
    assert "KIKU_API_KEY is set" in run.stderr


def test_whoami_prints_the_email(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/account"
        return reply(200, {"email": "dev@example.com"})

    run = kiku("whoami", handler=handler)
    assert (run.exit_code, run.stdout) == (0, "dev@example.com\n")
    assert kiku("auth:whoami", handler=handler).stdout == "dev@example.com\n"


def test_whoami_with_a_rejected_token_is_not_logged_in(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(401, {"id": "unauthorized", "message": "Invalid credentials provided."})

    run = kiku("whoami", handler=handler)
    assert run.exit_code == 100
    assert run.stderr == "Error: not logged in\n"


def test_whoami_without_credentials_is_not_logged_in(kiku: Kiku) -> None:
    run = kiku("whoami")
    assert (run.exit_code, run.stderr, run.requests) == (100, "Error: not logged in\n", [])


def test_token_prints_the_stored_token(kiku: Kiku) -> None:
    kiku.login_as(token="tok-123")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth/authorizations/~"
        return reply(200, {"access_token": {"token": "tok-123", "expires_in": None}})

    run = kiku("auth:token", handler=handler)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "tok-123\n", "")


def test_token_prefers_the_api_key_and_warns_before_expiry(kiku: Kiku) -> None:
    kiku.login_as(token="tok-123")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer env-key"
        return reply(200, {"access_token": {"token": "env-key", "expires_in": 5 * 24 * 3600}})

    run = kiku("auth:token", handler=handler, KIKU_API_KEY="env-key")
    assert run.stdout == "env-key\n"
    assert "Your token will expire in 5 days" in run.stderr


def test_token_ignores_a_failing_expiry_check(kiku: Kiku) -> None:
    kiku.login_as(token="tok-123")
    run = kiku("auth:token")
    assert (run.exit_code, run.stdout, run.stderr) == (0, "tok-123\n", "")


def test_token_without_credentials(kiku: Kiku) -> None:
    run = kiku("auth:token")
    assert run.exit_code == 1
    assert run.stderr == "Error: Not logged in. Run `kiku login` first.\n"


def test_debug_trace_goes_to_stderr_without_secrets(kiku: Kiku) -> None:
    kiku.login_as(token="tok-123")

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, {"email": "dev@example.com"})

    run = kiku("whoami", handler=handler, KIKU_DEBUG="1", KIKU_DEBUG_HEADERS="1")
    assert run.stdout == "dev@example.com\n"
    assert "--> GET /account" in run.stderr
    assert "<-- 200 OK" in run.stderr
    assert "authorization: [REDACTED]" in run.stderr
    assert "tok-123" not in run.output
