"""config: show, get, set, unset."""

from __future__ import annotations

import json

import httpx
import pytest

from cli.clitest import Kiku, reply

MODULES = ("auth", "apps", "git", "config")
CONFIG = {"DATABASE_URL": "postgres://db/shiny", "A": "it's\there", "EMPTY": ""}


@pytest.fixture(autouse=True)
def config_commands(monkeypatch: pytest.MonkeyPatch, kiku: Kiku) -> None:
    monkeypatch.setattr("cli.clitest.CLIENT_MODULES", MODULES)
    kiku.login_as()


def config_api(request: httpx.Request) -> httpx.Response:
    assert (request.method, request.url.path) == ("GET", "/apps/shiny/config-vars")
    return reply(200, CONFIG)


def test_config_lists_sorted_aligned_vars(kiku: Kiku) -> None:
    run = kiku("config", "-a", "shiny", handler=config_api)
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "=== shiny Config Vars\n"
        "A:            it's\there\n"
        "DATABASE_URL: postgres://db/shiny\n"
        "EMPTY:        \n"
    )


def test_config_shell_quotes_values(kiku: Kiku) -> None:
    run = kiku("config", "-a", "shiny", "--shell", handler=config_api)
    assert run.exit_code == 0, run.output
    assert run.stdout == ("A='it'\"'\"'s\there'\nDATABASE_URL=postgres://db/shiny\nEMPTY=''\n")


def test_config_json(kiku: Kiku) -> None:
    run = kiku("config", "-a", "shiny", "--json", handler=config_api)
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout) == CONFIG


def test_config_get_prints_the_value(kiku: Kiku) -> None:
    run = kiku("config:get", "DATABASE_URL", "-a", "shiny", handler=config_api)
    assert run.exit_code == 0, run.output
    assert run.stdout == "postgres://db/shiny\n"


def test_config_get_of_an_unset_key_prints_an_empty_line(kiku: Kiku) -> None:
    run = kiku("config:get", "NOPE", "-a", "shiny", handler=config_api)
    assert run.exit_code == 0, run.output
    assert run.stdout == "\n"


def test_config_get_shell(kiku: Kiku) -> None:
    run = kiku("config:get", "DATABASE_URL", "-a", "shiny", "-s", handler=config_api)
    assert run.exit_code == 0, run.output
    assert run.stdout == "DATABASE_URL=postgres://db/shiny\n"


def change_api(request: httpx.Request) -> httpx.Response:
    if request.method == "PATCH":
        assert request.url.path == "/apps/shiny/config-vars"
        sent = json.loads(request.content)
        merged = {**CONFIG, **sent}
        return reply(200, {k: v for k, v in merged.items() if v is not None})
    assert (request.method, request.url.path) == ("GET", "/apps/shiny/releases")
    assert request.headers["Range"] == "version ..; order=desc,max=1"
    return reply(206, [{"id": "r-7", "version": 7}], **{"Next-Range": "version ]7..; max=1"})


def test_config_set_patches_then_reports_the_new_release(kiku: Kiku) -> None:
    run = kiku("config:set", "FOO=bar", "URL=a=b", "-a", "shiny", handler=change_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["PATCH /apps/shiny/config-vars", "GET /apps/shiny/releases"]
    assert json.loads(run.requests[0].content) == {"FOO": "bar", "URL": "a=b"}
    assert run.stderr == "Setting FOO, URL and restarting ⬢ shiny... done, v7\n"
    assert run.stdout == "FOO: bar\nURL: a=b\n"


def test_config_set_without_equals_fails_before_any_request(kiku: Kiku) -> None:
    run = kiku("config:set", "FOO=bar", "BAR", "-a", "shiny", handler=change_api)
    assert run.exit_code == 1
    assert run.stderr == "Error: KEY=VALUE expected, got 'BAR'\n"
    assert run.requests == []


def test_config_set_without_arguments_is_an_error(kiku: Kiku) -> None:
    run = kiku("config:set", "-a", "shiny", handler=change_api)
    assert run.exit_code == 1
    assert "Must specify KEY and VALUE to set." in run.stderr
    assert run.requests == []


def test_config_unset_patches_nulls(kiku: Kiku) -> None:
    run = kiku("config:unset", "A", "EMPTY", "-a", "shiny", handler=change_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["PATCH /apps/shiny/config-vars", "GET /apps/shiny/releases"]
    assert json.loads(run.requests[0].content) == {"A": None, "EMPTY": None}
    assert run.stderr == "Unsetting A, EMPTY and restarting ⬢ shiny... done, v7\n"
    assert run.stdout == ""


def test_config_set_shows_an_api_error(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(422, {"id": "invalid_params", "message": "Key is invalid"})

    run = kiku("config:set", "BAD-KEY=1", "-a", "shiny", handler=handler)
    assert run.exit_code == 1
    assert run.stderr == (
        "Setting BAD-KEY and restarting ⬢ shiny... !\n"
        "Error: Key is invalid\nError ID: invalid_params\n"
    )
