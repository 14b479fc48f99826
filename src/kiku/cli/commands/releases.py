"""releases: list and inspect an app's releases, show release output, roll back."""

from __future__ import annotations

from typing import Any

import click

from kiku.cli import KikuCliError
from kiku.cli.client import KikuClient, segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.commands.builds import stream_output
from kiku.cli.commands.config import print_vars
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app
from kiku.cli.printer import time_ago

DEFAULT_NUM = 15
ROLLBACK_WINDOW = 10
# Heroku's wording for a release that has not simply succeeded (releases/status_helper).
STATUS_WORDS = {
    "pending": "release command executing",
    "failed": "release command failed",
    "expired": "release expired",
}


def parse_version(text: str) -> int:
    """`v12` or `12` → 12."""
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not digits.isdigit():
        raise KikuCliError(f"Invalid release version '{text}': expected vN, e.g. v12.")
    return int(digits)


def releases_page(client: KikuClient, app: str, num: int) -> list[Any]:
    """The app's newest `num` releases, newest first (one page: Next-Range not followed)."""
    found = client.get(
        f"/apps/{segment(app)}/releases",
        headers={"Range": f"version ..; max={num}, order=desc"},
        partial=True,
    )
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def find_release(client: KikuClient, app: str, version: str | None) -> Any:
    """Release `vN`, or the app's newest release when `version` is None."""
    if version is not None:
        return client.get(f"/apps/{segment(app)}/releases/{parse_version(version)}")
    newest = releases_page(client, app, 1)
    if not newest:
        raise KikuCliError(f"{app} has no releases.")
    return newest[0]


def change(release: Any) -> str:
    """The description, followed by the status when it is not `succeeded`."""
    description = str(release.get("description") or "")
    status = STATUS_WORDS.get(str(release.get("status")))
    return f"{description} {status}" if status else description


def _email(release: Any) -> str:
    user = release.get("user")
    return str(user.get("email") or "") if isinstance(user, dict) else ""


@click.command("releases")
@app_options
@click.option(
    "-n", "--num", type=click.IntRange(1, 1000), default=DEFAULT_NUM, show_default=True,
    help="Number of releases to show.",
)  # fmt: skip
@json_option
@pass_kiku
def list_releases(
    kiku: CliContext, app: str | None, remote: str | None, num: int, as_json: bool
) -> None:
    """List an app's releases, newest first."""
    name = resolve_app(app, remote, kiku.git)
    releases = releases_page(kiku.client, name, num)
    if as_json:
        kiku.printer.json(releases)
        return
    if not releases:
        kiku.printer.line(f"{name} has no releases.")
        return
    current = next((r for r in releases if r.get("current") is True), None)
    title = f"{name} Releases"
    if current is not None:
        title += f" - Current: v{current.get('version')}"
    kiku.printer.header(title)
    kiku.printer.columns(
        [
            [f"v{r.get('version')}", change(r), _email(r), time_ago(r.get("created_at"))]
            for r in releases
        ]
    )


@click.command("releases:info")
@click.argument("release", metavar="[vN]", required=False)
@app_options
@click.option("-s", "--shell", is_flag=True, help="Output config vars in shell format.")
@json_option
@pass_kiku
def info(
    kiku: CliContext,
    release: str | None,
    app: str | None,
    remote: str | None,
    shell: bool,
    as_json: bool,
) -> None:
    """Show a release's details and its config vars (the newest release by default)."""
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    found = find_release(client, name, release)
    version = found.get("version")
    if as_json:
        kiku.printer.json(found)
        return
    config = client.get(f"/apps/{segment(name)}/releases/{version}/config-vars") or {}
    addons = [str(plan) for plan in found.get("addon_plan_names") or []]
    kiku.printer.header(f"Release v{version}")
    kiku.printer.key_values(
        [
            ("Add-ons", addons),
            ("By", _email(found)),
            ("Change", change(found)),
            ("When", time_ago(found.get("created_at"))),
        ]
    )
    kiku.printer.line()
    kiku.printer.header(f"v{version} Config vars")
    print_vars(kiku.printer, config, shell=shell)


@click.command("releases:output")
@click.argument("release", metavar="[vN]", required=False)
@app_options
@pass_kiku
def output(kiku: CliContext, release: str | None, app: str | None, remote: str | None) -> None:
    """Show a release's release-phase output (the newest release by default)."""
    name = resolve_app(app, remote, kiku.git)
    found = find_release(kiku.client, name, release)
    url = found.get("output_stream_url")
    if not url:
        kiku.printer.info(f"No release output for v{found.get('version')}")
        return
    stream_output(kiku, str(url))


def previous_release(releases: list[Any]) -> Any:
    """The newest release before the current one that can be rolled back to.

    Without a release marked current, Heroku's pick: the second eligible one.
    """
    eligible = [r for r in releases if r.get("eligible_for_rollback") is True]
    current = next((r for r in releases if r.get("current") is True), None)
    if current is not None and isinstance(current.get("version"), int):
        before = [r for r in eligible if _version(r) < current["version"]]
        return max(before, key=_version) if before else None
    return eligible[1] if len(eligible) > 1 else None


def _version(release: Any) -> int:
    version = release.get("version")
    return version if isinstance(version, int) else -1


@click.command("rollback")
@click.argument("release", metavar="[vN]", required=False)
@app_options
@pass_kiku
def rollback(kiku: CliContext, release: str | None, app: str | None, remote: str | None) -> None:
    """Roll back to an earlier release's code and config (the previous one by default).

    Add-ons, their data, the formation and domains are not rolled back.
    """
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    if release is None:
        target = previous_release(releases_page(client, name, ROLLBACK_WINDOW))
        if target is None:
            raise KikuCliError(f"⬢ {name} has no earlier release to roll back to.")
    else:
        target = client.get(f"/apps/{segment(name)}/releases/{parse_version(release)}")
        if target.get("eligible_for_rollback") is not True:
            raise KikuCliError(
                f"Cannot roll back to v{target.get('version')}: it is not eligible for "
                f"rollback (status {target.get('status')})."
            )
    version = target.get("version")
    with kiku.printer.action("Rolling back", app=name, suffix=f" to v{version}") as action:
        latest = client.post(f"/apps/{segment(name)}/releases", json={"release": target["id"]})
        action.status = f"done, v{latest.get('version')}"
    kiku.printer.info(f"Rolled back to v{version}")
    kiku.printer.warn("Rollback affects code and config vars; it doesn't add or remove addons.")
    if isinstance(latest.get("version"), int):
        kiku.printer.warn(f"To undo, run: kiku rollback v{latest['version'] - 1}")
    url = latest.get("output_stream_url")
    if url:
        kiku.printer.info("Running release command...")
        stream_output(kiku, str(url), missing_ok=True)


def register(cli: click.Group) -> None:
    add_command(cli, list_releases)
    add_command(cli, info)
    add_command(cli, output)
    add_command(cli, rollback, "releases:rollback")
