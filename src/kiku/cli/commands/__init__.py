"""The CLI's commands, one module per topic; each has `register(cli)`.

Shared pieces for command modules: `add_command` (with Heroku's short aliases) and the
options every app command takes (`-a/--app`, `-r/--remote`, `--json`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def add_command(cli: click.Group, command: click.Command, *aliases: str) -> None:
    """Add `command`, and each alias as a hidden copy (`info` runs `apps:info`)."""
    cli.add_command(command)
    for alias in aliases:
        twin = copy.copy(command)
        twin.name = alias
        twin.hidden = True
        cli.add_command(twin, alias)


def app_options(f: F) -> F:
    """`-a/--app APP` and `-r/--remote REMOTE`; resolve them with `gitremote.resolve_app`."""
    f = click.option("-r", "--remote", help="Git remote of the app to use.")(f)
    return click.option("-a", "--app", help="App to run the command against.")(f)


def json_option(f: F) -> F:
    """`--json`: print the API's JSON instead of the human view (as `as_json`)."""
    return click.option("--json", "as_json", is_flag=True, help="Output in JSON format.")(f)
