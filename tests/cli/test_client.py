"""KikuClient: headers, errors, paging, tracing."""

from __future__ import annotations

import httpx
import pytest

from cli.clitest import API_URL, Handler, reply
from kiku.cli.client import ApiError, ApiUnreachable, KikuClient, Trace


def client_for(
    handler: Handler, trace: Trace | None = None, warn: Trace | None = None
) -> KikuClient:
    transport = httpx.MockTransport(handler)
    return KikuClient(
        API_URL, "tok-123", transport=transport, trace=trace, trace_headers=True, warn=warn
    )


def test_sends_heroku_headers_and_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200, {"email": "dev@example.com"})

    assert client_for(handler).get("/account") == {"email": "dev@example.com"}
    headers = seen[0].headers
    assert headers["Accept"] == "application/vnd.heroku+json; version=3"
    assert headers["User-Agent"].startswith("kiku-cli/")
    assert headers["Authorization"] == "Bearer tok-123"


def test_error_body_becomes_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(
            404, {"id": "not_found", "message": "Couldn't find that app.", "resource": "app"}
        )

    with pytest.raises(ApiError) as raised:
        client_for(handler).get("/apps/nope")
    assert (raised.value.status, raised.value.id) == (404, "not_found")
    assert raised.value.format_message() == "Couldn't find that app."
    assert raised.value.resource == "app"


def test_error_without_json_body_still_says_something() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with pytest.raises(ApiError) as raised:
        client_for(handler).get("/apps")
    assert raised.value.id is None
    assert raised.value.format_message() == "502 Bad Gateway: <html>bad gateway</html>"


def test_401_tells_the_user_to_log_in() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(401, {"id": "unauthorized", "message": "Invalid credentials provided."})

    with pytest.raises(ApiError) as raised:
        client_for(handler).get("/account")
    assert raised.value.format_message() == "Invalid credentials provided. Run `kiku login` first."


def test_list_get_follows_next_range_to_the_end() -> None:
    ranges: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ranges.append(request.headers.get("Range"))
        pages = {
            None: (206, [{"name": "a"}, {"name": "b"}], {"Next-Range": "id ]b..; max=2"}),
            "id ]b..; max=2": (
                206,
                [{"name": "c"}, {"name": "d"}],
                {"Next-Range": "id ]d..; max=2"},
            ),
            "id ]d..; max=2": (200, [{"name": "e"}], {}),
        }
        status, body, headers = pages[request.headers.get("Range")]
        return reply(status, body, **headers)

    apps = client_for(handler).get("/apps")
    assert [a["name"] for a in apps] == ["a", "b", "c", "d", "e"]
    assert ranges == [None, "id ]b..; max=2", "id ]d..; max=2"]


def test_partial_get_keeps_the_explicit_range() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Range"] == "version ..; max=1, order=desc"
        return reply(206, [{"version": 9}], **{"Next-Range": "version ]9..; max=1"})

    page = client_for(handler).get(
        "/apps/a/releases", headers={"Range": "version ..; max=1, order=desc"}, partial=True
    )
    assert page == [{"version": 9}]


def test_connection_failure_says_where_and_what_to_do() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(ApiUnreachable) as raised:
        client_for(handler).get("/apps")
    message = raised.value.format_message()
    assert f"Could not reach the kiku API at {API_URL}" in message
    assert "`kiku server`" in message and "KIKU_API_URL" in message


def test_trace_shows_lines_and_headers_but_never_secrets() -> None:
    lines: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(201, {"ok": True}, **{"Request-Id": "r-1"})

    client = client_for(handler, trace=lines.append)
    client.post("/apps", json={}, headers={"Heroku-Two-Factor-Code": "123456"})
    text = "\n".join(lines)
    assert lines[0] == "--> POST /apps"
    assert "<-- 201 Created" in lines
    assert "    authorization: [REDACTED]" in lines
    assert "    heroku-two-factor-code: [REDACTED]" in lines
    assert "    request-id: r-1" in lines
    assert "tok-123" not in text and "123456" not in text


def test_api_warnings_are_passed_on() -> None:
    warnings: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, [], **{"Warning-Message": "This API is deprecated."})

    client_for(handler, warn=warnings.append).get("/apps")
    assert warnings == ["This API is deprecated."]


def test_empty_body_is_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    assert client_for(handler).delete("/oauth/sessions/~") is None
