"""certs: certificates (SNI endpoints) for an app's custom domains, served by the router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kiku.cli import KikuCliError
from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app


def _rows(endpoints: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["Name", "Common Name(s)", "Expires", "Trusted", "Type", "Domains"]]
    for e in endpoints:
        cert = e["ssl_cert"]
        expires = str(cert["expires_at"]).replace("T", " ").replace("Z", " UTC")
        trusted = "True" if cert["ca_signed?"] else "False"
        names = ", ".join(cert["cert_domains"])
        rows.append([e["name"], names, expires, trusted, "SNI", str(len(e["domains"]))])
    return rows


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise KikuCliError(f"Cannot read the {what} {path}: {exc}") from exc


@click.command("certs")
@app_options
@json_option
@pass_kiku
def certs(kiku: CliContext, app: str | None, remote: str | None, as_json: bool) -> None:
    """List the app's SSL certificates."""
    name = resolve_app(app, remote, kiku.git)
    listed: list[dict[str, Any]] = kiku.client.get(f"/apps/{segment(name)}/sni-endpoints")
    if as_json:
        kiku.printer.json(listed)
    elif not listed:
        kiku.printer.info(
            f"{name} has no SSL certificates.\nUse kiku certs:add CRT KEY to add one."
        )
    else:
        kiku.printer.columns(_rows(listed))


@click.command("certs:add")
@click.argument("crt", metavar="CRT")
@click.argument("key", metavar="KEY")
@app_options
@json_option
@pass_kiku
def add(
    kiku: CliContext, crt: str, key: str, app: str | None, remote: str | None, as_json: bool
) -> None:
    """Add a certificate (PEM chain file CRT, unencrypted key file KEY) for custom domains."""
    name = resolve_app(app, remote, kiku.git)
    body = {"certificate_chain": _read(crt, "certificate"), "private_key": _read(key, "key")}
    with kiku.printer.action("Adding SSL certificate to", app=name):
        made = kiku.client.post(f"/apps/{segment(name)}/sni-endpoints", json=body)
    if as_json:
        kiku.printer.json(made)
        return
    cert = made["ssl_cert"]
    kiku.printer.key_values(
        [
            ("Name", made["name"]),
            ("Common Name(s)", cert["cert_domains"]),
            ("Expires At", str(cert["expires_at"])),
            ("Issuer", cert["issuer"]),
            ("Starts At", str(cert["starts_at"])),
            ("Subject", cert["subject"]),
            ("Domains", str(len(made["domains"]))),
        ]
    )


@click.command("certs:remove")
@click.option("--name", help="The certificate to remove (when the app has several).")
@app_options
@click.option("-c", "--confirm", metavar="APP", help="Skip the prompt: the app's name.")
@pass_kiku
def remove(
    kiku: CliContext, name: str | None, app: str | None, remote: str | None, confirm: str | None
) -> None:
    """Remove a certificate; its domains fall back to kiku's own."""
    app_name = resolve_app(app, remote, kiku.git)
    listed = kiku.client.get(f"/apps/{segment(app_name)}/sni-endpoints")
    names = [e["name"] for e in listed]
    if name is None:
        if len(names) != 1:
            found = ", ".join(names) or "none"
            raise KikuCliError(f"Say which certificate with --name (the app has: {found}).")
        name = names[0]
    elif name not in names:
        raise KikuCliError(f"{app_name} has no certificate named {name}.")
    if confirm is None:
        kiku.printer.warn(
            f"WARNING: This will remove the certificate {name} from ⬢ {app_name}.\n"
            f"To proceed, type {app_name} or re-run this command with --confirm {app_name}"
        )
        confirm = str(
            click.prompt(">", prompt_suffix=" ", default="", show_default=False, err=True)
        )
    if confirm.strip() != app_name:
        raise KikuCliError(f"Confirmation did not match {app_name}. Aborted.")
    with kiku.printer.action(f"Removing SSL certificate {name} from", app=app_name):
        kiku.client.delete(f"/apps/{segment(app_name)}/sni-endpoints/{segment(name)}")


def register(cli: click.Group) -> None:
    add_command(cli, certs)
    add_command(cli, add)
    add_command(cli, remove)
