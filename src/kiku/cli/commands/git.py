"""git: point a git remote at an app."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from kiku.cli import KikuCliError
from kiku.cli.client import segment
from kiku.cli.commands import add_command
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import DEFAULT_REMOTE


@click.command("git:remote")
@click.option("-a", "--app", required=True, help="App to point the remote at.")
@click.option("-r", "--remote", default=DEFAULT_REMOTE, show_default=True, help="Git remote.")
@pass_kiku
def remote(kiku: CliContext, app: str, remote: str) -> None:
    """Add (or repoint) a git remote for an app in the current repository."""
    data = kiku.client.get(f"/apps/{segment(app)}")
    git_url = data.get("git_url")
    if not git_url:
        raise KikuCliError(f"The API gave no git URL for {app}.")
    kiku.git.set(remote, str(git_url))
    kiku.printer.line(f"set git remote {remote} to {git_url}")


@click.command("git:credentials", hidden=True)
@click.argument("operation")
@pass_kiku
def credentials(kiku: CliContext, operation: str) -> None:
    """A git credential helper: answers `get` for the kiku API host with your token.

    `kiku login` installs it (`credential.<API URL>.helper`), so `git push kiku main`
    authenticates as you, as Heroku's CLI does for git.heroku.com.
    """
    if operation != "get":
        return  # store / erase: the token lives in ~/.netrc, managed by login and logout
    asked: dict[str, str] = {}
    for line in sys.stdin.read().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            asked[key] = value
    api = urlsplit(kiku.settings.api_url)
    if asked.get("protocol") != api.scheme or asked.get("host") != api.netloc:
        return
    token = kiku.token()
    if token:
        click.echo(f"username=kiku\npassword={token}")


def credential_helper_command() -> str:
    """How git should run this CLI: by absolute path, since git's PATH may differ."""
    beside = Path(sys.executable).parent / "kiku"
    program = str(beside) if beside.exists() else (shutil.which("kiku") or "kiku")
    return f"!{program} git:credentials"


def register(cli: click.Group) -> None:
    add_command(cli, remote)
    add_command(cli, credentials)
