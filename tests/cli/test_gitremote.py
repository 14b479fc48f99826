"""Which app a command is for: -a, -r, then the kiku/heroku remotes (real git)."""

from __future__ import annotations

import pytest

from cli.clitest import Kiku
from kiku.cli import KikuCliError
from kiku.cli.gitremote import NO_APP, GitRemotes, app_from_url, resolve_app


@pytest.mark.parametrize(
    ("url", "app"),
    [
        ("http://127.0.0.1:5100/shiny.git", "shiny"),
        ("https://git.example.com/shiny-app.git", "shiny-app"),
        ("https://heroku:tok@127.0.0.1:5443/shiny.git", "shiny"),
        ("git@127.0.0.1:shiny.git", "shiny"),
        ("ssh://git@example.com:2222/shiny.git", "shiny"),
        ("https://github.com/owner/shiny.git", None),
        ("https://127.0.0.1:5100/shiny", None),
        ("", None),
    ],
)
def test_app_from_url(url: str, app: str | None) -> None:
    assert app_from_url(url) == app


def remotes_in(kiku: Kiku) -> GitRemotes:
    return GitRemotes(kiku.cwd, kiku.env)


def test_explicit_app_wins_over_remotes(kiku: Kiku, repo: object) -> None:
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/from-remote.git")
    assert resolve_app("explicit", None, remotes_in(kiku)) == "explicit"


@pytest.mark.parametrize("remote", ["kiku", "heroku"])
def test_app_from_a_kiku_or_heroku_remote(kiku: Kiku, repo: object, remote: str) -> None:
    kiku.git("remote", "add", "origin", "https://github.com/me/code.git")
    kiku.git("remote", "add", remote, "http://127.0.0.1:5100/shiny.git")
    assert resolve_app(None, None, remotes_in(kiku)) == "shiny"


def test_both_remotes_naming_the_same_app_is_fine(kiku: Kiku, repo: object) -> None:
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/shiny.git")
    kiku.git("remote", "add", "heroku", "git@127.0.0.1:shiny.git")
    assert resolve_app(None, None, remotes_in(kiku)) == "shiny"


def test_different_apps_in_remotes_ask_for_app(kiku: Kiku, repo: object) -> None:
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/one.git")
    kiku.git("remote", "add", "heroku", "http://127.0.0.1:5100/two.git")
    with pytest.raises(KikuCliError, match="Multiple apps in git remotes: one, two"):
        resolve_app(None, None, remotes_in(kiku))


def test_remote_option_picks_that_remote(kiku: Kiku, repo: object) -> None:
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/one.git")
    kiku.git("remote", "add", "staging", "http://127.0.0.1:5100/two.git")
    assert resolve_app(None, "staging", remotes_in(kiku)) == "two"
    with pytest.raises(KikuCliError, match="No git remote named prod"):
        resolve_app(None, "prod", remotes_in(kiku))


def test_no_app_anywhere(kiku: Kiku, repo: object) -> None:
    kiku.git("remote", "add", "origin", "https://github.com/me/code.git")
    with pytest.raises(KikuCliError) as raised:
        resolve_app(None, None, remotes_in(kiku))
    assert raised.value.message == NO_APP


def test_outside_a_repository_there_are_no_remotes(kiku: Kiku) -> None:
    assert remotes_in(kiku).remotes() == {}
    with pytest.raises(KikuCliError, match="No app specified"):
        resolve_app(None, None, remotes_in(kiku))


def test_set_adds_then_repoints(kiku: Kiku, repo: object) -> None:
    git = remotes_in(kiku)
    git.set("kiku", "http://127.0.0.1:5100/one.git")
    git.set("kiku", "http://127.0.0.1:5100/two.git")
    assert git.url("kiku") == "http://127.0.0.1:5100/two.git"


def test_add_leaves_an_existing_remote_alone(kiku: Kiku, repo: object) -> None:
    git = remotes_in(kiku)
    assert git.add("kiku", "http://127.0.0.1:5100/one.git") is True
    assert git.add("kiku", "http://127.0.0.1:5100/two.git") is False
    assert git.url("kiku") == "http://127.0.0.1:5100/one.git"


def test_set_outside_a_repository_says_so(kiku: Kiku) -> None:
    with pytest.raises(KikuCliError, match="Not a git repository"):
        remotes_in(kiku).set("kiku", "http://127.0.0.1:5100/one.git")


def test_remove_for_app_only_touches_that_app_on_that_host(kiku: Kiku, repo: object) -> None:
    kiku.git("remote", "add", "kiku", "http://127.0.0.1:5100/shiny.git")
    kiku.git("remote", "add", "heroku", "https://git.heroku.com/shiny.git")
    kiku.git("remote", "add", "other", "http://127.0.0.1:5100/other.git")
    removed = remotes_in(kiku).remove_for_app("shiny", "http://127.0.0.1:5100/shiny.git")
    assert removed == ["kiku"]
    assert set(remotes_in(kiku).remotes()) == {"heroku", "other"}
