"""buildpacks: show and change the ordered buildpacks an app's builds use.

Every change reads the current list, computes the new one here (as Heroku's CLI does)
and sends it whole: `PUT /apps/:a/buildpack-installations {"updates": [...]}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from kiku.cli import KikuCliError
from kiku.cli.client import KikuClient, segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import DEFAULT_REMOTE, resolve_app
from kiku.cli.printer import Printer

_REGISTRY_URL = re.compile(
    r"^https://buildpack-registry\.s3\.amazonaws\.com/buildpacks/([\w-]+/[\w-]+)\.tgz$"
)
_URN = "urn:buildpack:"

F = TypeVar("F", bound=Callable[..., object])


def display_name(installation: Any) -> str:
    """How a buildpack is shown: `heroku/python` for registry ones, else its URL."""
    buildpack = installation.get("buildpack") if isinstance(installation, dict) else None
    if not isinstance(buildpack, dict):
        return ""
    url = str(buildpack.get("url") or buildpack.get("name") or "")
    if url.startswith(_URN):
        return url[len(_URN) :]
    match = _REGISTRY_URL.match(url)
    return match[1] if match else url


def _names(installation: Any) -> set[str]:
    buildpack = installation.get("buildpack") if isinstance(installation, dict) else None
    found = {display_name(installation)}
    if isinstance(buildpack, dict):
        found |= {str(buildpack[k]) for k in ("url", "name") if buildpack.get(k)}
    return found


def _matches(installation: Any, wanted: str) -> bool:
    plain = wanted[len(_URN) :] if wanted.startswith(_URN) else wanted
    return bool({wanted, plain} & _names(installation))


def _sent(installation: Any) -> str:
    """What goes back in `updates` for a buildpack already installed."""
    buildpack = installation.get("buildpack") if isinstance(installation, dict) else None
    if isinstance(buildpack, dict):
        return str(buildpack.get("url") or buildpack.get("name") or "")
    return ""


def fetch(client: KikuClient, app: str) -> list[Any]:
    found = client.get(f"/apps/{segment(app)}/buildpack-installations")
    if not isinstance(found, list):
        return []
    return sorted(
        (i for i in found if isinstance(i, dict)),
        key=lambda i: i.get("ordinal") if isinstance(i.get("ordinal"), int) else 0,
    )


def put(client: KikuClient, app: str, urls: Sequence[str]) -> list[Any]:
    """Replace the app's buildpacks; the new list as the API answers it."""
    updates = [{"buildpack": url} for url in urls]
    answer = client.put(f"/apps/{segment(app)}/buildpack-installations", json={"updates": updates})
    if isinstance(answer, list):
        return answer
    return [{"ordinal": i, "buildpack": {"url": url}} for i, url in enumerate(urls)]


def _index_option(f: F) -> F:
    return click.option(
        "-i", "--index", type=int, help="The 1-based position of the buildpack in the list."
    )(f)


def _check_index(index: int | None) -> None:
    if index is not None and index < 1:
        raise KikuCliError("Invalid index. Must be greater than 0.")


def _not_set_yet(installations: Sequence[Any], url: str) -> None:
    if any(_matches(i, url) for i in installations):
        raise KikuCliError(f"The buildpack {url} is already set on your app.")


def _print_list(printer: Printer, installations: Sequence[Any], indent: str = "") -> None:
    if len(installations) == 1:
        printer.line(f"{indent}{display_name(installations[0])}")
        return
    for number, installation in enumerate(installations, start=1):
        printer.line(f"{indent}{number}. {display_name(installation)}")


def _print_update(printer: Printer, done: str, app: str, installations: Sequence[Any]) -> None:
    push = f"git push {DEFAULT_REMOTE} main"
    if not installations:
        printer.line(f"Buildpack {done}.")
    elif len(installations) == 1:
        printer.line(
            f"Buildpack {done}. Next release on {app} will use {display_name(installations[0])}."
        )
        printer.line(f"Run {push} to create a new release using this buildpack.")
    else:
        printer.line(f"Buildpack {done}. Next release on {app} will use:")
        _print_list(printer, installations, "  ")
        printer.line(f"Run {push} to create a new release using these buildpacks.")


@click.command("buildpacks")
@app_options
@json_option
@pass_kiku
def show(kiku: CliContext, app: str | None, remote: str | None, as_json: bool) -> None:
    """Show the buildpacks the app's next build uses."""
    name = resolve_app(app, remote, kiku.git)
    installations = fetch(kiku.client, name)
    if as_json:
        kiku.printer.json(installations)
        return
    if not installations:
        kiku.printer.line(f"⬢ {name} has no Buildpack URL set.")
        return
    plural = "s" if len(installations) > 1 else ""
    kiku.printer.header(f"{name} Buildpack URL{plural}")
    _print_list(kiku.printer, installations)


@click.command("buildpacks:set")
@click.argument("url", metavar="BUILDPACK")
@_index_option
@app_options
@pass_kiku
def set_buildpack(
    kiku: CliContext, url: str, index: int | None, app: str | None, remote: str | None
) -> None:
    """Set the app's buildpack (replacing the one at --index, default the first)."""
    _check_index(index)
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    current = fetch(client, name)
    _not_set_yet(current, url)
    urls = [_sent(i) for i in current]
    at = (index or 1) - 1
    urls[at : at + 1] = [url]
    _print_update(kiku.printer, "set", name, put(client, name, urls))


@click.command("buildpacks:add")
@click.argument("url", metavar="BUILDPACK")
@_index_option
@app_options
@pass_kiku
def add(kiku: CliContext, url: str, index: int | None, app: str | None, remote: str | None) -> None:
    """Add a buildpack: at --index (1-based), or after the others."""
    _check_index(index)
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    current = fetch(client, name)
    _not_set_yet(current, url)
    urls = [_sent(i) for i in current]
    urls.insert(len(urls) if index is None else index - 1, url)
    _print_update(kiku.printer, "added", name, put(client, name, urls))


@click.command("buildpacks:remove")
@click.argument("url", metavar="[BUILDPACK]", required=False)
@_index_option
@app_options
@pass_kiku
def remove(
    kiku: CliContext, url: str | None, index: int | None, app: str | None, remote: str | None
) -> None:
    """Remove a buildpack, by URL or by --index."""
    if url is not None and index is not None:
        raise KikuCliError("Please choose either index or Buildpack, but not both.")
    if url is None and index is None:
        raise KikuCliError(
            "Usage: kiku buildpacks:remove [BUILDPACK]. "
            "Must specify a buildpack to remove, either by index or URL."
        )
    _check_index(index)
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    current = fetch(client, name)
    if not current:
        raise KikuCliError(
            f"No buildpacks were found. Next release on {name} will detect buildpacks normally."
        )
    if index is not None:
        if index > len(current):
            valid = "1" if len(current) == 1 else f"a value between 1 and {len(current)}"
            raise KikuCliError(f"Invalid index. Please choose {valid}.")
        at = index - 1
    else:
        assert url is not None
        at = next((n for n, i in enumerate(current) if _matches(i, url)), -1)
        if at < 0:
            raise KikuCliError(f"Buildpack {url} not found. Nothing was removed.")
    urls = [_sent(i) for i in current]
    del urls[at]
    _print_update(kiku.printer, "removed", name, put(client, name, urls))


@click.command("buildpacks:clear")
@app_options
@pass_kiku
def clear(kiku: CliContext, app: str | None, remote: str | None) -> None:
    """Clear the app's buildpacks; the next build detects them."""
    name = resolve_app(app, remote, kiku.git)
    put(kiku.client, name, [])
    kiku.printer.line(
        f"Buildpacks cleared. Next release on {name} will detect buildpacks normally."
    )


def register(cli: click.Group) -> None:
    add_command(cli, show)
    add_command(cli, set_buildpack)
    add_command(cli, add)
    add_command(cli, remove)
    add_command(cli, clear)
