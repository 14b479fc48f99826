"""maintenance: the router answers 503 with a maintenance page; dynos keep running."""

from __future__ import annotations

import click

from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app


@click.command("maintenance")
@app_options
@pass_kiku
def maintenance(kiku: CliContext, app: str | None, remote: str | None) -> None:
    """Show whether the app is in maintenance mode."""
    name = resolve_app(app, remote, kiku.git)
    data = kiku.client.get(f"/apps/{segment(name)}")
    kiku.printer.line("on" if data.get("maintenance") else "off")


def _switch(kiku: CliContext, app: str | None, remote: str | None, on: bool) -> None:
    name = resolve_app(app, remote, kiku.git)
    verb = "Enabling" if on else "Disabling"
    with kiku.printer.action(f"{verb} maintenance mode for", app=name):
        kiku.client.patch(f"/apps/{segment(name)}", json={"maintenance": on})


@click.command("maintenance:on")
@app_options
@pass_kiku
def maintenance_on(kiku: CliContext, app: str | None, remote: str | None) -> None:
    """Put the app into maintenance mode."""
    _switch(kiku, app, remote, True)


@click.command("maintenance:off")
@app_options
@pass_kiku
def maintenance_off(kiku: CliContext, app: str | None, remote: str | None) -> None:
    """Take the app out of maintenance mode."""
    _switch(kiku, app, remote, False)


def register(cli: click.Group) -> None:
    add_command(cli, maintenance)
    add_command(cli, maintenance_on)
    add_command(cli, maintenance_off)
