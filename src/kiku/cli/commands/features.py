"""features / labs: an app's labs features (today: runtime-dyno-metadata)."""

from __future__ import annotations

import click

from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app


@click.command("features")
@app_options
@json_option
@pass_kiku
def features(kiku: CliContext, app: str | None, remote: str | None, as_json: bool) -> None:
    """List the app's labs features; [+] marks the enabled ones."""
    name = resolve_app(app, remote, kiku.git)
    listed = kiku.client.get(f"/apps/{segment(name)}/features")
    if as_json:
        kiku.printer.json(listed)
        return
    kiku.printer.header(f"⬢ {name} App Features")
    for feature in listed:
        mark = "[+]" if feature["enabled"] else "[ ]"
        kiku.printer.line(f"{mark} {feature['name']}  {feature['description']}")


def _switch(kiku: CliContext, app: str | None, remote: str | None, feature: str, on: bool) -> None:
    name = resolve_app(app, remote, kiku.git)
    verb = "Enabling" if on else "Disabling"
    with kiku.printer.action(f"{verb} {feature} for", app=name):
        kiku.client.patch(
            f"/apps/{segment(name)}/features/{segment(feature)}", json={"enabled": on}
        )


@click.command("features:enable")
@click.argument("feature")
@app_options
@pass_kiku
def enable(kiku: CliContext, feature: str, app: str | None, remote: str | None) -> None:
    """Enable a labs feature (it takes effect from the next release)."""
    _switch(kiku, app, remote, feature, True)


@click.command("features:disable")
@click.argument("feature")
@app_options
@pass_kiku
def disable(kiku: CliContext, feature: str, app: str | None, remote: str | None) -> None:
    """Disable a labs feature."""
    _switch(kiku, app, remote, feature, False)


def register(cli: click.Group) -> None:
    add_command(cli, features, "labs")
    add_command(cli, enable, "labs:enable")
    add_command(cli, disable, "labs:disable")
