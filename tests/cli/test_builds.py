"""builds: list, info, output, cache:purge."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cli.clitest import API_URL, Kiku, reply
from kiku.cli.printer import time_ago

MODULES = ("auth", "apps", "git", "builds")
WHEN = "2024-05-01T12:00:00Z"


@pytest.fixture(autouse=True)
def build_commands(monkeypatch: pytest.MonkeyPatch, kiku: Kiku) -> None:
    monkeypatch.setattr("cli.clitest.CLIENT_MODULES", MODULES)
    kiku.login_as()


def build(build_id: str, status: str, version: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": build_id,
        "status": status,
        "created_at": WHEN,
        "user": {"id": "u-1", "email": "dev@example.com"},
        "source_blob": {"url": None, "version": version},
        "buildpacks": [{"url": "heroku/python", "name": "heroku/python"}],
        "stack": "heroku-24",
        "release": None,
        "output_stream_url": f"{API_URL}/streams/builds/{build_id}",
        **fields,
    }


BUILDS = [
    build("b-2", "failed", "2222222"),
    build("b-1", "succeeded", "1111111", release={"id": "rel-2"}),
]


def test_builds_lists_newest_first(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/apps/shiny/builds")
        assert request.headers["Range"] == "created_at ..; max=15, order=desc"
        return reply(206, BUILDS, **{"Next-Range": "created_at ]x..; max=15"})

    run = kiku("builds", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert len(run.requests) == 1
    when = time_ago(WHEN)
    assert run.stdout == (
        "=== shiny Builds\n"
        f"b-2  {when}  dev@example.com  failed     2222222\n"
        f"b-1  {when}  dev@example.com  succeeded  1111111\n"
    )


def test_builds_num_and_json(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Range"] == "created_at ..; max=1, order=desc"
        return reply(200, BUILDS[:1])

    run = kiku("builds", "-a", "shiny", "-n", "1", "--json", handler=handler)
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout) == BUILDS[:1]


def test_builds_info_of_the_latest(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/apps/shiny/builds"
        assert request.headers["Range"] == "created_at ..; max=1, order=desc"
        return reply(200, BUILDS[1:])

    run = kiku("builds:info", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "=== Build b-1\n"
        "Buildpacks: heroku/python\n"
        "By:         dev@example.com\n"
        "Release:    rel-2\n"
        "Stack:      heroku-24\n"
        "Status:     succeeded\n"
        "Version:    1111111\n"
        f"When:       {time_ago(WHEN)}\n"
    )


def test_builds_info_of_an_id_as_json(kiku: Kiku) -> None:
    run = kiku(
        "builds:info", "b-2", "-a", "shiny", "--json", handler=lambda r: reply(200, BUILDS[0])
    )
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny/builds/b-2"]
    assert json.loads(run.stdout) == BUILDS[0]


def test_builds_output_streams_the_build_log(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/apps/shiny/builds/b-2":
            return reply(200, BUILDS[0])
        assert request.url.path == "/streams/builds/b-2"
        assert request.headers["Authorization"] == "Bearer tok-123"
        return httpx.Response(200, text="-----> Python app detected\n !     Push failed\n")

    run = kiku("builds:output", "b-2", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.stdout == "-----> Python app detected\n !     Push failed\n"


def test_builds_output_of_a_missing_stream_is_an_error(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/apps/shiny/builds":
            return reply(200, BUILDS[:1])
        return reply(404, {"id": "not_found", "message": "No output for that build."})

    run = kiku("builds:output", "-a", "shiny", handler=handler)
    assert run.exit_code == 1
    assert run.stderr == "Error: No output for that build.\nError ID: not_found\n"


def test_builds_of_an_app_without_builds(kiku: Kiku) -> None:
    run = kiku("builds:info", "-a", "shiny", handler=lambda r: reply(200, []))
    assert run.exit_code == 1
    assert run.stderr == "Error: shiny has no builds.\n"


def test_builds_cache_purge_with_confirm(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("DELETE", "/apps/shiny/build-cache")
        return reply(202)

    run = kiku("builds:cache:purge", "-a", "shiny", "--confirm", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.stderr == "Purging build cache for ⬢ shiny... done\n"


def test_builds_cache_purge_prompts_and_aborts_on_a_mismatch(kiku: Kiku) -> None:
    run = kiku("builds:cache:purge", "-a", "shiny", input="other\n")
    assert run.exit_code == 1
    assert "re-run this command with --confirm shiny" in run.stderr
    assert "Error: Confirmation did not match shiny. Aborted." in run.stderr
    assert run.requests == []
