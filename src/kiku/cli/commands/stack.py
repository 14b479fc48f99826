"""stack: the stack an app builds and runs on."""

from __future__ import annotations

import click

from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app


@click.command("stack")
@app_options
@pass_kiku
def stack(kiku: CliContext, app: str | None, remote: str | None) -> None:
    """Show the stacks on offer; the app's is starred."""
    name = resolve_app(app, remote, kiku.git)
    current = kiku.client.get(f"/apps/{segment(name)}")
    stacks = kiku.client.get(f"/apps/{segment(name)}/available-stacks")
    kiku.printer.header(f"⬢ {name} Available Stacks")
    for entry in stacks:
        mark = "*" if entry["name"] == current["build_stack"]["name"] else " "
        kiku.printer.line(f"{mark} {entry['name']}")


@click.command("stack:set")
@click.argument("stack_name")
@app_options
@pass_kiku
def stack_set(kiku: CliContext, stack_name: str, app: str | None, remote: str | None) -> None:
    """Build the app on STACK_NAME from its next push."""
    name = resolve_app(app, remote, kiku.git)
    with kiku.printer.action(f"Setting stack to {stack_name}"):
        kiku.client.patch(f"/apps/{segment(name)}", json={"build_stack": stack_name})
    kiku.printer.line("You will need to redeploy ⬢ " + name + " for the change to take effect.")
    kiku.printer.line("Run git push kiku main to trigger a new build on ⬢ " + name + ".")


def register(cli: click.Group) -> None:
    add_command(cli, stack)
    add_command(cli, stack_set)
