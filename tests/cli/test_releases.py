"""releases: list, info, output, rollback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cli.clitest import API_URL, Kiku, reply
from kiku.cli.printer import time_ago

MODULES = ("auth", "apps", "git", "releases")
OLD = "2024-05-01T12:00:00Z"


@pytest.fixture(autouse=True)
def release_commands(monkeypatch: pytest.MonkeyPatch, kiku: Kiku) -> None:
    monkeypatch.setattr("cli.clitest.CLIENT_MODULES", MODULES)
    kiku.login_as()


def release(version: int, description: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"rel-{version}",
        "version": version,
        "description": description,
        "status": "succeeded",
        "current": False,
        "eligible_for_rollback": True,
        "addon_plan_names": [],
        "user": {"id": "u-1", "email": "dev@example.com"},
        "output_stream_url": None,
        "created_at": OLD,
        **fields,
    }


RELEASES = [
    release(5, "Deploy abc1234", status="failed", eligible_for_rollback=False),
    release(4, "Set FOO config vars", current=True),
    release(3, "Deploy 0123abc", status="pending", eligible_for_rollback=False),
    release(2, "Enable Logplex"),
    release(1, "Initial release"),
]


def test_releases_lists_with_heroku_range_and_status_words(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/apps/shiny/releases")
        assert request.headers["Range"] == "version ..; max=15, order=desc"
        return reply(206, RELEASES, **{"Next-Range": "version ]1..; max=15, order=desc"})

    run = kiku("releases", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert len(run.requests) == 1  # partial: Next-Range is not followed
    when = time_ago(OLD)
    assert run.stdout == (
        "=== shiny Releases - Current: v4\n"
        f"v5  Deploy abc1234 release command failed     dev@example.com  {when}\n"
        f"v4  Set FOO config vars                       dev@example.com  {when}\n"
        f"v3  Deploy 0123abc release command executing  dev@example.com  {when}\n"
        f"v2  Enable Logplex                            dev@example.com  {when}\n"
        f"v1  Initial release                           dev@example.com  {when}\n"
    )


def test_releases_num_and_json(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Range"] == "version ..; max=2, order=desc"
        return reply(200, RELEASES[:2])

    run = kiku("releases", "-a", "shiny", "-n", "2", "--json", handler=handler)
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout) == RELEASES[:2]


def test_time_ago_within_and_beyond_a_day() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    local = now.astimezone().strftime("%Y/%m/%d %H:%M:%S %z")
    assert time_ago("2024-05-01T12:00:00Z", now) == f"{local} (~ 0s ago)"
    assert time_ago("2024-05-01T12:00:00Z", now + timedelta(seconds=42)).endswith("(~ 42s ago)")
    assert time_ago("2024-05-01T12:00:00Z", now + timedelta(minutes=5)).endswith("(~ 5m ago)")
    assert time_ago("2024-05-01T12:00:00Z", now + timedelta(hours=3)).endswith("(~ 3h ago)")
    assert time_ago("2024-05-01T12:00:00Z", now + timedelta(days=2)) == local


def test_releases_info_of_the_newest_release(kiku: Kiku) -> None:
    newest = release(4, "Attach DATABASE", addon_plan_names=["heroku-postgresql:mini"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/apps/shiny/releases":
            assert request.headers["Range"] == "version ..; max=1, order=desc"
            return reply(200, [newest])
        assert request.url.path == "/apps/shiny/releases/4/config-vars"
        return reply(200, {"FOO": "bar", "DATABASE_URL": "postgres://x"})

    run = kiku("releases:info", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.paths() == [
        "GET /apps/shiny/releases",
        "GET /apps/shiny/releases/4/config-vars",
    ]
    assert run.stdout == (
        "=== Release v4\n"
        "Add-ons: heroku-postgresql:mini\n"
        "By:      dev@example.com\n"
        "Change:  Attach DATABASE\n"
        f"When:    {time_ago(OLD)}\n"
        "\n"
        "=== v4 Config vars\n"
        "DATABASE_URL: postgres://x\n"
        "FOO:          bar\n"
    )


def test_releases_info_of_a_version_in_shell_form(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/apps/shiny/releases/3":
            return reply(200, RELEASES[2])
        assert request.url.path == "/apps/shiny/releases/3/config-vars"
        return reply(200, {"FOO": "a b"})

    run = kiku("releases:info", "v3", "-a", "shiny", "--shell", handler=handler)
    assert run.exit_code == 0, run.output
    assert "Change:  Deploy 0123abc release command executing\n" in run.stdout
    assert run.stdout.endswith("=== v3 Config vars\nFOO='a b'\n")


def test_releases_info_json(kiku: Kiku) -> None:
    run = kiku(
        "releases:info", "2", "-a", "shiny", "--json", handler=lambda r: reply(200, RELEASES[3])
    )
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny/releases/2"]
    assert json.loads(run.stdout) == RELEASES[3]


def test_releases_info_rejects_a_bad_version(kiku: Kiku) -> None:
    run = kiku("releases:info", "latest", "-a", "shiny")
    assert run.exit_code == 1
    assert "Error: Invalid release version 'latest'" in run.stderr
    assert run.requests == []


def test_releases_output_fetches_the_stream_with_the_token(kiku: Kiku) -> None:
    url = f"{API_URL}/streams/releases/rel-4"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/apps/shiny/releases/4":
            return reply(200, release(4, "Deploy", output_stream_url=url))
        assert str(request.url) == url
        assert request.headers["Authorization"] == "Bearer tok-123"
        return httpx.Response(200, text="Running migrations\tok\ndone\n")

    run = kiku("releases:output", "v4", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.stdout == "Running migrations\tok\ndone\n"


def test_releases_output_elsewhere_goes_without_the_token(kiku: Kiku) -> None:
    url = "https://output.example.com/streams/1"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/apps/shiny/releases":
            return reply(200, [release(4, "Deploy", output_stream_url=url)])
        assert str(request.url) == url
        assert "Authorization" not in request.headers
        return httpx.Response(
            200, text="data: one\n\ndata: two\n\n", headers={"Content-Type": "text/event-stream"}
        )

    run = kiku("releases:output", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.stdout == "one\ntwo\n"


def test_releases_output_when_there_is_none(kiku: Kiku) -> None:
    run = kiku("releases:output", "v2", "-a", "shiny", handler=lambda r: reply(200, RELEASES[3]))
    assert run.exit_code == 0, run.output
    assert run.stderr == "No release output for v2\n"
    assert run.stdout == ""


def rollback_api(request: httpx.Request) -> httpx.Response:
    if (request.method, request.url.path) == ("GET", "/apps/shiny/releases"):
        assert request.headers["Range"] == "version ..; max=10, order=desc"
        return reply(200, RELEASES)
    if (request.method, request.url.path) == ("GET", "/apps/shiny/releases/1"):
        return reply(200, RELEASES[4])
    if (request.method, request.url.path) == ("GET", "/apps/shiny/releases/3"):
        return reply(200, RELEASES[2])
    assert (request.method, request.url.path) == ("POST", "/apps/shiny/releases")
    target = json.loads(request.content)["release"]
    return reply(201, release(6, f"Rollback to {target}", current=True))


def test_rollback_picks_the_eligible_release_before_the_current(kiku: Kiku) -> None:
    run = kiku("rollback", "-a", "shiny", handler=rollback_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny/releases", "POST /apps/shiny/releases"]
    assert json.loads(run.requests[1].content) == {"release": "rel-2"}
    assert run.stderr == (
        "Rolling back ⬢ shiny to v2... done, v6\n"
        "Rolled back to v2\n"
        " ›   Rollback affects code and config vars; it doesn't add or remove addons.\n"
        " ›   To undo, run: kiku rollback v5\n"
    )


def test_rollback_to_a_given_version(kiku: Kiku) -> None:
    run = kiku("rollback", "v1", "-a", "shiny", handler=rollback_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny/releases/1", "POST /apps/shiny/releases"]
    assert json.loads(run.requests[1].content) == {"release": "rel-1"}
    assert "Rolling back ⬢ shiny to v1... done, v6" in run.stderr


def test_rollback_to_an_ineligible_release_fails_before_posting(kiku: Kiku) -> None:
    run = kiku("rollback", "3", "-a", "shiny", handler=rollback_api)
    assert run.exit_code == 1
    assert run.paths() == ["GET /apps/shiny/releases/3"]
    assert run.stderr == (
        "Error: Cannot roll back to v3: it is not eligible for rollback (status pending).\n"
    )


def test_rollback_with_nothing_earlier_fails(kiku: Kiku) -> None:
    only = [release(1, "Initial release", current=True)]
    run = kiku("rollback", "-a", "shiny", handler=lambda r: reply(200, only))
    assert run.exit_code == 1
    assert run.paths() == ["GET /apps/shiny/releases"]
    assert "Error: ⬢ shiny has no earlier release to roll back to." in run.stderr


def test_rollback_streams_the_release_command_output(kiku: Kiku) -> None:
    url = f"{API_URL}/streams/releases/rel-6"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return reply(201, release(6, "Rollback to v2", output_stream_url=url))
        if str(request.url) == url:
            return httpx.Response(200, text="migrating\n")
        return rollback_api(request)

    run = kiku("rollback", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert "Running release command..." in run.stderr
    assert run.stdout == "migrating\n"
