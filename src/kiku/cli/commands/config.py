"""config: show, get, set and unset an app's config vars."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import click

from kiku.cli import KikuCliError
from kiku.cli.client import KikuClient, segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app
from kiku.cli.printer import Printer

# What Heroku's CLI sends for "the newest release" after changing config (partial).
NEWEST_RELEASE_RANGE = "version ..; order=desc,max=1"


def shell_line(key: str, value: str) -> str:
    """`KEY=value`, the value quoted for a POSIX shell where it needs it."""
    return f"{key}={shlex.quote(value)}"


def print_vars(printer: Printer, config: Mapping[str, Any], shell: bool = False) -> None:
    """Config vars sorted by key: aligned `KEY: value`, or `KEY=value` lines for a shell."""
    keys = sorted(config)
    if shell:
        for key in keys:
            printer.raw(shell_line(key, _text(config[key])))
        return
    width = max((len(key) for key in keys), default=0) + 1
    for key in keys:
        printer.raw(f"{key + ':':<{width}} {_text(config[key])}")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """`["K=V", …]` as a dict; anything without `=` (or with no key) is an error."""
    assignments: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise KikuCliError(f"KEY=VALUE expected, got '{pair}'")
        assignments[key] = value
    return assignments


def newest_version(client: KikuClient, app: str) -> int | None:
    """The version of the app's newest release (the one a config change just made)."""
    releases = client.get(
        f"/apps/{segment(app)}/releases",
        headers={"Range": NEWEST_RELEASE_RANGE},
        partial=True,
    )
    if isinstance(releases, list) and releases and isinstance(releases[0], dict):
        version = releases[0].get("version")
        return version if isinstance(version, int) else None
    return None


def _and_list(names: Sequence[str]) -> str:
    return ", ".join(names)


@click.command("config")
@app_options
@click.option("-s", "--shell", is_flag=True, help="Output config vars in shell format.")
@json_option
@pass_kiku
def show(kiku: CliContext, app: str | None, remote: str | None, shell: bool, as_json: bool) -> None:
    """Show an app's config vars."""
    name = resolve_app(app, remote, kiku.git)
    config = kiku.client.get(f"/apps/{segment(name)}/config-vars") or {}
    if as_json:
        kiku.printer.json(config)
        return
    if not shell:
        kiku.printer.header(f"{name} Config Vars")
    print_vars(kiku.printer, config, shell=shell)


@click.command("config:get")
@click.argument("key")
@app_options
@click.option("-s", "--shell", is_flag=True, help="Output in shell format (KEY=value).")
@pass_kiku
def get(kiku: CliContext, key: str, app: str | None, remote: str | None, shell: bool) -> None:
    """Show one config var's value (an empty line when it is not set)."""
    name = resolve_app(app, remote, kiku.git)
    config = kiku.client.get(f"/apps/{segment(name)}/config-vars") or {}
    value = _text(config.get(key))
    kiku.printer.raw(shell_line(key, value) if shell else value)


@click.command("config:set")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@app_options
@pass_kiku
def set_vars(kiku: CliContext, pairs: tuple[str, ...], app: str | None, remote: str | None) -> None:
    """Set one or more config vars; the app restarts on a new release."""
    if not pairs:
        raise KikuCliError(
            "Usage: kiku config:set KEY1=VALUE1 [KEY2=VALUE2 ...]\n"
            "Must specify KEY and VALUE to set."
        )
    assignments = parse_assignments(pairs)
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    verb = f"Setting {_and_list(list(assignments))} and restarting"
    with kiku.printer.action(verb, app=name) as action:
        config = client.patch(f"/apps/{segment(name)}/config-vars", json=assignments)
        version = newest_version(client, name)
        if version is not None:
            action.status = f"done, v{version}"
    shown = config if isinstance(config, dict) else {}
    print_vars(kiku.printer, {key: shown.get(key, value) for key, value in assignments.items()})


@click.command("config:unset")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@app_options
@pass_kiku
def unset(kiku: CliContext, keys: tuple[str, ...], app: str | None, remote: str | None) -> None:
    """Unset one or more config vars; the app restarts on a new release."""
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    unique = list(dict.fromkeys(keys))
    with kiku.printer.action(f"Unsetting {_and_list(unique)} and restarting", app=name) as action:
        client.patch(f"/apps/{segment(name)}/config-vars", json=dict.fromkeys(unique))
        version = newest_version(client, name)
        if version is not None:
            action.status = f"done, v{version}"


def register(cli: click.Group) -> None:
    add_command(cli, show)
    add_command(cli, get)
    add_command(cli, set_vars, "config:add")
    add_command(cli, unset, "config:remove")
