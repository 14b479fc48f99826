"""drains: where an app's log stream is also sent (syslog://, syslog+tls://, https://)."""

from __future__ import annotations

from typing import Any

import click

from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app


@click.command("drains")
@app_options
@json_option
@pass_kiku
def drains(kiku: CliContext, app: str | None, remote: str | None, as_json: bool) -> None:
    """List the app's log drains, each with its token (the HOSTNAME receivers see)."""
    name = resolve_app(app, remote, kiku.git)
    listed: list[dict[str, Any]] = kiku.client.get(f"/apps/{segment(name)}/log-drains")
    if as_json:
        kiku.printer.json(listed)
        return
    if not listed:
        kiku.printer.info(f"{name} has no drains.")
        return
    kiku.printer.header("Drains")
    for drain in listed:
        kiku.printer.line(f"{drain['url']} ({drain['token']})")


@click.command("drains:add")
@click.argument("url")
@app_options
@pass_kiku
def add(kiku: CliContext, url: str, app: str | None, remote: str | None) -> None:
    """Send the app's logs to URL too: syslog://HOST:PORT, syslog+tls://HOST:PORT,
    or https://[USER:PASSWORD@]HOST/PATH (batches of syslog frames)."""
    name = resolve_app(app, remote, kiku.git)
    made = kiku.client.post(f"/apps/{segment(name)}/log-drains", json={"url": url})
    kiku.printer.line(f"Successfully added drain {made['url']}")


@click.command("drains:remove")
@click.argument("url_or_token")
@app_options
@pass_kiku
def remove(kiku: CliContext, url_or_token: str, app: str | None, remote: str | None) -> None:
    """Stop sending the app's logs to a drain, named by URL or token."""
    name = resolve_app(app, remote, kiku.git)
    gone = kiku.client.delete(f"/apps/{segment(name)}/log-drains/{segment(url_or_token)}")
    kiku.printer.line(f"Successfully removed drain {gone['url']}")


def register(cli: click.Group) -> None:
    add_command(cli, drains)
    add_command(cli, add)
    add_command(cli, remove)
