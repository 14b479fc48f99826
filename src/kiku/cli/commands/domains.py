"""domains: the hostnames the router serves an app at (its own APP.DOMAIN and custom ones)."""

from __future__ import annotations

from typing import Any

import click

from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app


def record_type(hostname: str) -> str:
    """A CNAME for a subdomain; an apex (example.com) needs ALIAS or ANAME records."""
    return "ALIAS or ANAME" if hostname.removeprefix("*.").count(".") == 1 else "CNAME"


@click.command("domains")
@app_options
@json_option
@pass_kiku
def domains(kiku: CliContext, app: str | None, remote: str | None, as_json: bool) -> None:
    """List the app's domains."""
    name = resolve_app(app, remote, kiku.git)
    listed: list[dict[str, Any]] = kiku.client.get(f"/apps/{segment(name)}/domains")
    if as_json:
        kiku.printer.json(listed)
        return
    kiku.printer.header(f"{name} Heroku Domain")
    for domain in listed:
        if domain["kind"] == "heroku":
            kiku.printer.line(domain["hostname"])
    custom = [d for d in listed if d["kind"] == "custom"]
    if not custom:
        return
    kiku.printer.line()
    kiku.printer.header(f"{name} Custom Domains")
    rows = [["Domain Name", "DNS Record Type", "DNS Target", "SNI Endpoint"]]
    for d in sorted(custom, key=lambda d: str(d["hostname"])):
        endpoint = (d.get("sni_endpoint") or {}).get("name") or ""
        rows.append([d["hostname"], record_type(d["hostname"]), d["cname"] or "", endpoint])
    kiku.printer.columns(rows)


@click.command("domains:add")
@click.argument("hostname")
@app_options
@json_option
@pass_kiku
def add(
    kiku: CliContext, hostname: str, app: str | None, remote: str | None, as_json: bool
) -> None:
    """Add a custom domain: the router serves the app at HOSTNAME too."""
    name = resolve_app(app, remote, kiku.git)
    with kiku.printer.action(f"Adding {hostname} to", app=name):
        made = kiku.client.post(f"/apps/{segment(name)}/domains", json={"hostname": hostname})
    if as_json:
        kiku.printer.json(made)
        return
    kiku.printer.info(
        f"Configure your DNS provider: a {record_type(made['hostname'])} record for "
        f"{made['hostname']} pointing to the DNS Target {made['cname']}."
    )


@click.command("domains:remove")
@click.argument("hostname")
@app_options
@pass_kiku
def remove(kiku: CliContext, hostname: str, app: str | None, remote: str | None) -> None:
    """Remove a custom domain."""
    name = resolve_app(app, remote, kiku.git)
    with kiku.printer.action(f"Removing {hostname} from", app=name):
        kiku.client.delete(f"/apps/{segment(name)}/domains/{segment(hostname)}")


@click.command("domains:clear")
@app_options
@pass_kiku
def clear(kiku: CliContext, app: str | None, remote: str | None) -> None:
    """Remove all of the app's custom domains."""
    name = resolve_app(app, remote, kiku.git)
    with kiku.printer.action("Removing all domains from", app=name):
        for domain in kiku.client.get(f"/apps/{segment(name)}/domains"):
            if domain["kind"] == "custom":
                kiku.client.delete(f"/apps/{segment(name)}/domains/{segment(domain['id'])}")


def register(cli: click.Group) -> None:
    add_command(cli, domains, "domains:list")
    add_command(cli, add)
    add_command(cli, remove)
    add_command(cli, clear)
