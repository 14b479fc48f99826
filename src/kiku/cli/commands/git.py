"""git: point a git remote at an app."""

from __future__ import annotations

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


def register(cli: click.Group) -> None:
    add_command(cli, remote)
