"""apps: create, list, inspect, open and destroy apps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin

import click

from kiku.cli import KikuCliError
from kiku.cli.client import KikuClient, segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import DEFAULT_REMOTE, resolve_app
from kiku.cli.printer import human_size


def _field(data: Any, *keys: str) -> Any:
    """`data[k1][k2]…`, or None where a level is missing (API objects nest names)."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


@click.command("apps:create")
@click.argument("name", required=False)
@click.option("-r", "--remote", default=DEFAULT_REMOTE, show_default=True, help="Git remote.")
@click.option("--no-remote", is_flag=True, help="Do not add a git remote.")
@click.option("--region", help="Region to create the app in.")
@click.option("-s", "--stack", help="Stack to build the app on.")
@json_option
@pass_kiku
def create(
    kiku: CliContext,
    name: str | None,
    remote: str,
    no_remote: bool,
    region: str | None,
    stack: str | None,
    as_json: bool,
) -> None:
    """Create a new app (and a git remote for it when run in a git repository)."""
    client = kiku.client
    body = {key: value for key, value in (("name", name), ("region", region), ("stack", stack))}
    body = {key: value for key, value in body.items() if value}
    with kiku.printer.action("Creating" if name else "Creating app", app=name) as action:
        app = client.post("/apps", json=body)
        if not name:
            action.app = app["name"]
    if as_json:
        kiku.printer.json(app)
    else:
        kiku.printer.line(f"{app.get('web_url')} | {app.get('git_url')}")
    if not no_remote and app.get("git_url") and kiku.git.is_repo():
        _add_remote(kiku, remote, app)


def _add_remote(kiku: CliContext, remote: str, app: Any) -> None:
    # As Heroku's CLI: an existing remote is never repointed by creating another app.
    if kiku.git.add(remote, app["git_url"]):
        kiku.printer.info(f"Git remote {remote} added")
    else:
        kiku.printer.warn(
            f"Git remote {remote} already exists; left as it was. To use it for this app, "
            f"run: kiku git:remote -a {app['name']} -r {remote}"
        )


@click.command("apps")
@click.option("-A", "--all", "show_all", is_flag=True, help="Include every app you can see.")
@json_option
@pass_kiku
def list_apps(kiku: CliContext, show_all: bool, as_json: bool) -> None:
    """List your apps (and the ones you collaborate on)."""
    client = kiku.client
    apps = client.get("/apps" if show_all else "/users/~/apps")
    if as_json:
        kiku.printer.json(apps)
        return
    if not apps:
        kiku.printer.line("You have no apps.")
        return
    email = _field(client.get("/account"), "email")
    owned = sorted(a["name"] for a in apps if _field(a, "owner", "email") == email)
    others = sorted(
        (a["name"], _field(a, "owner", "email") or "")
        for a in apps
        if _field(a, "owner", "email") != email
    )
    if owned:
        kiku.printer.header(f"{email} Apps")
        for name in owned:
            kiku.printer.line(name)
    if others:
        if owned:
            kiku.printer.line()
        kiku.printer.header("Collaborated Apps")
        kiku.printer.columns(others)


@click.command("apps:info")
@app_options
@json_option
@pass_kiku
def info(kiku: CliContext, app: str | None, remote: str | None, as_json: bool) -> None:
    """Show an app's details."""
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    data = client.get(f"/apps/{segment(name)}")
    collaborators = _collaborators(client, name)
    if as_json:
        kiku.printer.json({"app": data, "collaborators": collaborators})
        return
    kiku.printer.header(str(data.get("name", name)))
    kiku.printer.key_values(info_rows(data, collaborators))


def _collaborators(client: KikuClient, app: str) -> list[Any]:
    # Collaborators are extra detail: an API without them must not break apps:info.
    try:
        found = client.get(f"/apps/{segment(app)}/collaborators")
    except KikuCliError:
        return []
    return found if isinstance(found, list) else []


def info_rows(app: Any, collaborators: Sequence[Any]) -> list[tuple[str, str | list[str]]]:
    """apps:info's `Key: value` lines, sorted by key as Heroku's CLI sorts them."""
    owner = _field(app, "owner", "email")
    others = sorted(
        email
        for c in collaborators
        if (email := _field(c, "user", "email")) is not None and email != owner
    )
    rows: dict[str, str | list[str]] = {
        "Git URL": app.get("git_url") or "",
        "Maintenance": "on" if app.get("maintenance") else "off",
        "Owner": owner or "",
        "Region": _field(app, "region", "name") or "",
        "Stack": _field(app, "stack", "name") or "",
        "Web URL": app.get("web_url") or "",
    }
    if others:
        rows["Collaborators"] = others
    for key, title in (("repo_size", "Repo Size"), ("slug_size", "Slug Size")):
        if isinstance(app.get(key), int):
            rows[title] = human_size(app[key])
    return sorted(rows.items())


@click.command("apps:open")
@click.argument("path", required=False, default="")
@app_options
@pass_kiku
def open_app(kiku: CliContext, path: str, app: str | None, remote: str | None) -> None:
    """Open the app in a web browser (PATH is appended to its URL)."""
    name = resolve_app(app, remote, kiku.git)
    data = kiku.client.get(f"/apps/{segment(name)}")
    url = urljoin(str(data["web_url"]), path)
    kiku.printer.line(url)
    kiku.open_url(url)


@click.command("apps:destroy")
@click.argument("name", required=False)
@app_options
@click.option("-c", "--confirm", metavar="APP", help="Skip the prompt: the app's name.")
@pass_kiku
def destroy(
    kiku: CliContext, name: str | None, app: str | None, remote: str | None, confirm: str | None
) -> None:
    """Permanently destroy an app, and the git remotes here that point at it."""
    client = kiku.client
    data = client.get(f"/apps/{segment(resolve_app(name or app, remote, kiku.git))}")
    target = str(data["name"])
    if confirm is None:
        kiku.printer.warn(
            f"WARNING: This will delete ⬢ {target} including all add-ons.\n"
            f"To proceed, type {target} or re-run this command with --confirm {target}"
        )
        confirm = str(
            click.prompt(">", prompt_suffix=" ", default="", show_default=False, err=True)
        )
    if confirm.strip() != target:
        raise KikuCliError(f"Confirmation did not match {target}. Aborted.")
    with kiku.printer.action("Destroying", app=target, suffix=" (including all add-ons)"):
        client.delete(f"/apps/{segment(target)}")
    for removed in kiku.git.remove_for_app(target, data.get("git_url")):
        kiku.printer.info(f"Git remote {removed} removed")


def register(cli: click.Group) -> None:
    add_command(cli, list_apps, "apps:list")
    add_command(cli, create, "create")
    add_command(cli, info, "info")
    add_command(cli, open_app, "open")
    add_command(cli, destroy, "destroy")
