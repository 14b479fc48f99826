"""buildpacks: show, set, add, remove, clear."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cli.clitest import Handler, Kiku, reply

MODULES = ("auth", "apps", "git", "buildpacks")
PATH = "/apps/shiny/buildpack-installations"


@pytest.fixture(autouse=True)
def buildpack_commands(monkeypatch: pytest.MonkeyPatch, kiku: Kiku) -> None:
    monkeypatch.setattr("cli.clitest.CLIENT_MODULES", MODULES)
    kiku.login_as()


def installations(*urls: str) -> list[dict[str, Any]]:
    return [
        {"ordinal": n, "buildpack": {"url": url, "name": url.removeprefix("urn:buildpack:")}}
        for n, url in enumerate(urls)
    ]


def api(*urls: str) -> Handler:
    """Answers GET with `urls` installed and PUT with what was sent."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == PATH
        if request.method == "GET":
            return reply(200, installations(*urls))
        assert request.method == "PUT"
        updates = json.loads(request.content)["updates"]
        return reply(200, installations(*(u["buildpack"] for u in updates)))

    return handler


def sent(run: Any) -> list[str]:
    put = [r for r in run.requests if r.method == "PUT"]
    assert len(put) == 1
    return [u["buildpack"] for u in json.loads(put[0].content)["updates"]]


def test_buildpacks_shows_one(kiku: Kiku) -> None:
    run = kiku("buildpacks", "-a", "shiny", handler=api("urn:buildpack:heroku/python"))
    assert run.exit_code == 0, run.output
    assert run.stdout == "=== shiny Buildpack URL\nheroku/python\n"


def test_buildpacks_numbers_several(kiku: Kiku) -> None:
    handler = api("heroku/nodejs", "https://github.com/x/bp.git")
    run = kiku("buildpacks", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "=== shiny Buildpack URLs\n1. heroku/nodejs\n2. https://github.com/x/bp.git\n"
    )


def test_buildpacks_none(kiku: Kiku) -> None:
    run = kiku("buildpacks", "-a", "shiny", handler=api())
    assert run.exit_code == 0, run.output
    assert run.stdout == "⬢ shiny has no Buildpack URL set.\n"


def test_buildpacks_set_replaces_the_first(kiku: Kiku) -> None:
    run = kiku("buildpacks:set", "heroku/python", "-a", "shiny", handler=api("heroku/ruby"))
    assert run.exit_code == 0, run.output
    assert run.paths() == [f"GET {PATH}", f"PUT {PATH}"]
    assert sent(run) == ["heroku/python"]
    assert run.stdout == (
        "Buildpack set. Next release on shiny will use heroku/python.\n"
        "Run git push kiku main to create a new release using this buildpack.\n"
    )


def test_buildpacks_set_at_an_index(kiku: Kiku) -> None:
    handler = api("heroku/nodejs", "heroku/ruby")
    run = kiku("buildpacks:set", "heroku/python", "-i", "2", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert sent(run) == ["heroku/nodejs", "heroku/python"]


def test_buildpacks_add_appends(kiku: Kiku) -> None:
    run = kiku("buildpacks:add", "heroku/python", "-a", "shiny", handler=api("heroku/nodejs"))
    assert run.exit_code == 0, run.output
    assert sent(run) == ["heroku/nodejs", "heroku/python"]
    assert run.stdout == (
        "Buildpack added. Next release on shiny will use:\n"
        "  1. heroku/nodejs\n"
        "  2. heroku/python\n"
        "Run git push kiku main to create a new release using these buildpacks.\n"
    )


def test_buildpacks_add_at_an_index(kiku: Kiku) -> None:
    handler = api("heroku/nodejs", "heroku/ruby")
    run = kiku("buildpacks:add", "heroku/python", "--index", "1", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert sent(run) == ["heroku/python", "heroku/nodejs", "heroku/ruby"]


def test_buildpacks_add_refuses_a_duplicate(kiku: Kiku) -> None:
    handler = api("urn:buildpack:heroku/python")
    run = kiku("buildpacks:add", "heroku/python", "-a", "shiny", handler=handler)
    assert run.exit_code == 1
    assert run.stderr == "Error: The buildpack heroku/python is already set on your app.\n"
    assert run.paths() == [f"GET {PATH}"]


def test_buildpacks_remove_by_url(kiku: Kiku) -> None:
    handler = api("heroku/nodejs", "heroku/python")
    run = kiku("buildpacks:remove", "heroku/nodejs", "-a", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert sent(run) == ["heroku/python"]
    assert run.stdout.startswith("Buildpack removed. Next release on shiny will use heroku/python.")


def test_buildpacks_remove_by_index_down_to_none(kiku: Kiku) -> None:
    run = kiku("buildpacks:remove", "-i", "1", "-a", "shiny", handler=api("heroku/python"))
    assert run.exit_code == 0, run.output
    assert sent(run) == []
    assert run.stdout == "Buildpack removed.\n"


def test_buildpacks_remove_of_an_absent_one_sends_no_put(kiku: Kiku) -> None:
    run = kiku("buildpacks:remove", "heroku/go", "-a", "shiny", handler=api("heroku/python"))
    assert run.exit_code == 1
    assert run.stderr == "Error: Buildpack heroku/go not found. Nothing was removed.\n"
    assert run.paths() == [f"GET {PATH}"]


def test_buildpacks_remove_of_an_index_out_of_range(kiku: Kiku) -> None:
    handler = api("heroku/nodejs", "heroku/python")
    run = kiku("buildpacks:remove", "-i", "3", "-a", "shiny", handler=handler)
    assert run.exit_code == 1
    assert run.stderr == "Error: Invalid index. Please choose a value between 1 and 2.\n"
    assert run.paths() == [f"GET {PATH}"]


def test_buildpacks_remove_needs_exactly_one_of_url_and_index(kiku: Kiku) -> None:
    run = kiku("buildpacks:remove", "-a", "shiny")
    assert run.exit_code == 1
    assert "Must specify a buildpack to remove" in run.stderr
    both = kiku("buildpacks:remove", "heroku/go", "-i", "1", "-a", "shiny")
    assert both.exit_code == 1
    assert "either index or Buildpack, but not both" in both.stderr
    assert run.requests == both.requests == []


def test_buildpacks_clear(kiku: Kiku) -> None:
    run = kiku("buildpacks:clear", "-a", "shiny", handler=api("heroku/python"))
    assert run.exit_code == 0, run.output
    assert run.paths() == [f"PUT {PATH}"]
    assert sent(run) == []
    assert run.stdout == (
        "Buildpacks cleared. Next release on shiny will detect buildpacks normally.\n"
    )
