"""apps: create, list, info, open, destroy."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from cli.clitest import Kiku, reply

SHINY = {
    "id": "app-1",
    "name": "shiny",
    "git_url": "http://127.0.0.1:5100/shiny.git",
    "web_url": "http://shiny.localhost:8080/",
    "owner": {"id": "u-1", "email": "dev@example.com"},
    "region": {"id": "r-1", "name": "local"},
    "stack": {"id": "s-1", "name": "heroku-24"},
    "maintenance": False,
    "repo_size": 16384,
    "slug_size": None,
}


def shiny_api(request: httpx.Request) -> httpx.Response:
    routes = {
        ("GET", "/apps/shiny"): lambda: reply(200, SHINY),
        ("GET", "/apps/shiny/collaborators"): lambda: reply(
            200,
            [
                {"user": {"email": "dev@example.com"}, "role": "owner"},
                {"user": {"email": "pal@example.com"}, "role": "collaborator"},
            ],
        ),
        ("DELETE", "/apps/shiny"): lambda: reply(200, SHINY),
    }
    route = routes.get((request.method, request.url.path))
    if route is None:
        return reply(404, {"id": "not_found", "message": "Couldn't find that app."})
    return route()


def test_create_posts_the_name_and_adds_a_git_remote(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/apps")
        assert json.loads(request.content) == {"name": "shiny"}
        return reply(201, SHINY)

    run = kiku("create", "shiny", handler=handler)
    assert run.exit_code == 0, run.output
    assert "Creating ⬢ shiny... done" in run.stderr
    assert run.stdout == "http://shiny.localhost:8080/ | http://127.0.0.1:5100/shiny.git\n"
    assert "Git remote kiku added" in run.stderr
    assert kiku.git("remote", "get-url", "kiku").strip() == SHINY["git_url"]


def test_create_keeps_an_existing_remote(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/older.git")
    run = kiku("create", "shiny", handler=lambda r: reply(201, SHINY))
    assert run.exit_code == 0, run.output
    assert "Git remote kiku already exists" in run.stderr
    assert "kiku git:remote -a shiny -r kiku" in run.stderr
    assert kiku.git("remote", "get-url", "kiku").strip() == "http://127.0.0.1:5100/older.git"


def test_create_without_a_name_reports_the_one_given(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {}
        return reply(201, SHINY)

    run = kiku("apps:create", "--remote", "staging", handler=handler)
    assert run.exit_code == 0, run.output
    assert "Creating app... done, ⬢ shiny" in run.stderr
    assert kiku.git("remote").split() == ["staging"]


def test_create_no_remote_and_json(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()
    run = kiku("create", "shiny", "--no-remote", "--json", handler=lambda r: reply(201, SHINY))
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout) == SHINY
    assert kiku.git("remote") == ""


def test_create_outside_a_repository_adds_no_remote(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("create", "shiny", handler=lambda r: reply(201, SHINY))
    assert run.exit_code == 0, run.output
    assert "Git remote" not in run.output


def test_create_with_a_taken_name_fails_cleanly(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(422, {"id": "invalid_params", "message": "Name is already taken"})

    run = kiku("create", "shiny", handler=handler)
    assert run.exit_code == 1
    assert run.stderr == (
        "Creating ⬢ shiny... !\nError: Name is already taken\nError ID: invalid_params\n"
    )
    assert "Traceback" not in run.output


def test_apps_lists_owned_then_collaborated(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/account":
            return reply(200, {"email": "dev@example.com"})
        assert request.url.path == "/users/~/apps"
        mine = {"email": "dev@example.com"}
        theirs = {"email": "boss@example.com"}
        return reply(
            200,
            [
                {"name": "zeta", "owner": mine},
                {"name": "alpha", "owner": mine},
                {"name": "shared", "owner": theirs},
            ],
        )

    run = kiku("apps", handler=handler)
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "=== dev@example.com Apps\nalpha\nzeta\n\n=== Collaborated Apps\nshared  boss@example.com\n"
    )


def test_apps_all_and_json(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/apps"
        return reply(200, [SHINY])

    run = kiku("apps", "-A", "--json", handler=handler)
    assert json.loads(run.stdout) == [SHINY]


def test_apps_when_there_are_none(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("apps", handler=lambda r: reply(200, []))
    assert run.stdout == "You have no apps.\n"


def test_info_shows_aligned_details(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("info", "-a", "shiny", handler=shiny_api)
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "=== shiny\n"
        "Collaborators: pal@example.com\n"
        "Git URL:       http://127.0.0.1:5100/shiny.git\n"
        "Maintenance:   off\n"
        "Owner:         dev@example.com\n"
        "Region:        local\n"
        "Repo Size:     16 KB\n"
        "Stack:         heroku-24\n"
        "Web URL:       http://shiny.localhost:8080/\n"
    )


def test_info_infers_the_app_from_the_kiku_remote(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/shiny.git")
    run = kiku("apps:info", "--json", handler=shiny_api)
    assert run.exit_code == 0, run.output
    shown = json.loads(run.stdout)
    assert shown["app"] == SHINY
    assert len(shown["collaborators"]) == 2


def test_info_without_an_app(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()
    run = kiku("info")
    assert run.exit_code == 1
    assert run.stderr == (
        "Error: No app specified. Run this command from an app folder or specify which app "
        "to use with --app APP.\n"
    )
    assert run.requests == []


def test_unknown_app_shows_message_and_error_id(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("info", "-a", "nope", handler=shiny_api)
    assert run.exit_code == 1
    assert run.stderr == "Error: Couldn't find that app.\nError ID: not_found\n"


def test_rejected_token_says_to_log_in(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(401, {"id": "unauthorized", "message": "Invalid credentials provided."})

    run = kiku("apps", handler=handler)
    assert run.exit_code == 1
    assert "Error: Invalid credentials provided. Run `kiku login` first." in run.stderr


def test_no_credentials_says_to_log_in(kiku: Kiku) -> None:
    run = kiku("apps")
    assert (run.exit_code, run.requests) == (1, [])
    assert run.stderr == "Error: Not logged in. Run `kiku login` first.\n"


def test_unreachable_api_is_explained(kiku: Kiku) -> None:
    kiku.login_as()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    run = kiku("apps", handler=handler)
    assert run.exit_code == 1
    assert "Error: Could not reach the kiku API at http://127.0.0.1:5100" in run.stderr
    assert "Traceback" not in run.output


def test_open_launches_the_web_url(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("open", "admin/login", "-a", "shiny", handler=shiny_api)
    assert run.exit_code == 0, run.output
    assert run.stdout == "http://shiny.localhost:8080/admin/login\n"
    assert kiku.opened == ["http://shiny.localhost:8080/admin/login"]


def test_destroy_aborts_when_the_confirmation_does_not_match(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("destroy", "shiny", handler=shiny_api, input="shinny\n")
    assert run.exit_code == 1
    assert "WARNING: This will delete ⬢ shiny including all add-ons." in run.stderr
    assert "Error: Confirmation did not match shiny. Aborted." in run.stderr
    assert run.paths() == ["GET /apps/shiny"]


def test_destroy_with_a_wrong_confirm_flag_aborts(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("apps:destroy", "-a", "shiny", "--confirm", "other", handler=shiny_api)
    assert run.exit_code == 1
    assert "DELETE /apps/shiny" not in run.paths()


def test_destroy_after_typing_the_name_removes_the_remote(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/shiny.git")
    kiku.git("remote", "add", "origin", "https://github.com/me/shiny.git")
    run = kiku("destroy", handler=shiny_api, input="shiny\n")
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny", "DELETE /apps/shiny"]
    assert "Destroying ⬢ shiny (including all add-ons)... done" in run.stderr
    assert kiku.git("remote").split() == ["origin"]


def test_destroy_with_confirm_does_not_prompt(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("destroy", "-a", "shiny", "--confirm", "shiny", handler=shiny_api)
    assert run.exit_code == 0, run.output
    assert "WARNING" not in run.output
    assert run.paths()[-1] == "DELETE /apps/shiny"
