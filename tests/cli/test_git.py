"""git:remote: point a remote at an app's git URL."""

from __future__ import annotations

from pathlib import Path

import httpx
from click.testing import CliRunner

from cli.clitest import Kiku, reply

GIT_URL = "http://127.0.0.1:5100/shiny.git"


def shiny(request: httpx.Request) -> httpx.Response:
    assert (request.method, request.url.path) == ("GET", "/apps/shiny")
    return reply(200, {"name": "shiny", "git_url": GIT_URL})


def test_git_remote_adds_the_kiku_remote(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()
    run = kiku("git:remote", "-a", "shiny", handler=shiny)
    assert run.exit_code == 0, run.output
    assert run.stdout == f"set git remote kiku to {GIT_URL}\n"
    assert kiku.git("remote", "get-url", "kiku").strip() == GIT_URL


def test_git_remote_repoints_a_named_remote(kiku: Kiku, repo: Path) -> None:
    kiku.login_as()
    kiku.git("remote", "add", "production", "http://127.0.0.1:5100/old.git")
    run = kiku("git:remote", "-a", "shiny", "-r", "production", handler=shiny)
    assert run.exit_code == 0, run.output
    assert kiku.git("remote", "get-url", "production").strip() == GIT_URL


def test_git_remote_outside_a_repository(kiku: Kiku) -> None:
    kiku.login_as()
    run = kiku("git:remote", "-a", "shiny", handler=shiny)
    assert run.exit_code == 1
    assert run.stderr == "Error: Not a git repository. Run `git init` first.\n"


def test_git_credentials_answers_only_for_the_api_host(tmp_path: Path) -> None:
    from kiku.cli.context import CliContext
    from kiku.cli.main import build_cli

    env = {"HOME": str(tmp_path), "KIKU_API_URL": "http://127.0.0.1:5100", "KIKU_API_KEY": "HRKU-t"}
    runner = CliRunner()
    ours = runner.invoke(
        build_cli(),
        ["git:credentials", "get"],
        input="protocol=http\nhost=127.0.0.1:5100\n\n",
        obj=CliContext.from_env(env, cwd=tmp_path),
    )
    assert ours.exit_code == 0
    assert ours.output == "username=kiku\npassword=HRKU-t\n"
    other = runner.invoke(
        build_cli(),
        ["git:credentials", "get"],
        input="protocol=https\nhost=github.com\n\n",
        obj=CliContext.from_env(env, cwd=tmp_path),
    )
    assert other.exit_code == 0 and other.output == ""
