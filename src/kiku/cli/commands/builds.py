"""builds: list and inspect an app's builds, show their output, purge the build cache.

Also home of `stream_output`, which prints a build's or release's `output_stream_url`.
"""

from __future__ import annotations

from typing import Any

import click
import httpx

from kiku.cli import KikuCliError
from kiku.cli.client import ApiError, ApiUnreachable, KikuClient, segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app
from kiku.cli.printer import Printer, time_ago

DEFAULT_NUM = 15


def _field(data: Any, *keys: str) -> Any:
    """`data[k1][k2]…`, or None where a level is missing."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _same_origin(url: str, api_url: str) -> bool:
    target, api = httpx.URL(url), httpx.URL(api_url)
    if not target.is_absolute_url:
        return True
    return (target.scheme, target.host, target.port) == (api.scheme, api.host, api.port)


def stream_output(kiku: CliContext, url: str, *, missing_ok: bool = False) -> bool:
    """Print the text at an output stream URL as it arrives; False if 404 and `missing_ok`.

    The token goes only to the API's own host (where kiku serves its streams); a stream
    elsewhere is fetched without it. A `text/event-stream` answer is shown by its `data:`
    lines, as Heroku's CLI shows one.
    """
    if _same_origin(url, kiku.settings.api_url):
        return _stream(kiku.client, url, kiku.printer, missing_ok)
    with kiku.make_client(None) as anonymous:
        return _stream(anonymous, url, kiku.printer, missing_ok)


def _stream(client: KikuClient, url: str, printer: Printer, missing_ok: bool) -> bool:
    # KikuClient answers with parsed JSON; an output stream is text, read as it comes.
    try:
        with client._http.stream("GET", url) as response:
            if response.status_code == 404 and missing_ok:
                return False
            if not response.is_success:
                response.read()
                raise ApiError.from_response(response)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                _print_events(response, printer)
            else:
                for chunk in response.iter_text():
                    printer.raw(chunk, end="")
    except httpx.TransportError as exc:
        raise ApiUnreachable(f"Could not read the output at {url}: {exc}") from exc
    return True


def _print_events(response: httpx.Response, printer: Printer) -> None:
    for line in response.iter_lines():
        if line.startswith("data:"):
            data = line[5:]
            printer.raw(data[1:] if data.startswith(" ") else data)


def latest_or_id(client: KikuClient, app: str, build_id: str | None) -> Any:
    """The build `build_id`, or the newest build of `app`."""
    if build_id:
        return client.get(f"/apps/{segment(app)}/builds/{segment(build_id)}")
    builds = client.get(
        f"/apps/{segment(app)}/builds",
        headers={"Range": "created_at ..; max=1, order=desc"},
        partial=True,
    )
    if not builds:
        raise KikuCliError(f"{app} has no builds.")
    return builds[0]


@click.command("builds")
@app_options
@click.option(
    "-n", "--num", type=click.IntRange(1, 1000), default=DEFAULT_NUM, show_default=True,
    help="Number of builds to show.",
)  # fmt: skip
@json_option
@pass_kiku
def list_builds(
    kiku: CliContext, app: str | None, remote: str | None, num: int, as_json: bool
) -> None:
    """List an app's builds, newest first."""
    name = resolve_app(app, remote, kiku.git)
    builds = kiku.client.get(
        f"/apps/{segment(name)}/builds",
        headers={"Range": f"created_at ..; max={num}, order=desc"},
        partial=True,
    )
    if as_json:
        kiku.printer.json(builds)
        return
    if not builds:
        kiku.printer.line(f"{name} has no builds.")
        return
    kiku.printer.header(f"{name} Builds")
    kiku.printer.columns(
        [
            [
                str(build.get("id") or ""),
                time_ago(build.get("created_at")),
                str(_field(build, "user", "email") or ""),
                str(build.get("status") or ""),
                str(_field(build, "source_blob", "version") or ""),
            ]
            for build in builds
        ]
    )


@click.command("builds:info")
@click.argument("build_id", metavar="[ID]", required=False)
@app_options
@json_option
@pass_kiku
def info(
    kiku: CliContext, build_id: str | None, app: str | None, remote: str | None, as_json: bool
) -> None:
    """Show a build's details (the latest build when ID is omitted)."""
    name = resolve_app(app, remote, kiku.git)
    build = latest_or_id(kiku.client, name, build_id)
    if as_json:
        kiku.printer.json(build)
        return
    buildpacks = [
        str(bp.get("name") or bp.get("url") or "")
        for bp in build.get("buildpacks") or []
        if isinstance(bp, dict)
    ]
    kiku.printer.header(f"Build {build.get('id', '')}")
    kiku.printer.key_values(
        [
            ("Buildpacks", buildpacks),
            ("By", str(_field(build, "user", "email") or "")),
            ("Release", str(_field(build, "release", "id") or "")),
            ("Stack", str(_field(build, "stack") or "")),
            ("Status", str(build.get("status") or "")),
            ("Version", str(_field(build, "source_blob", "version") or "")),
            ("When", time_ago(build.get("created_at"))),
        ]
    )


@click.command("builds:output")
@click.argument("build_id", metavar="[ID]", required=False)
@app_options
@pass_kiku
def output(kiku: CliContext, build_id: str | None, app: str | None, remote: str | None) -> None:
    """Show a build's output (the latest build when ID is omitted)."""
    name = resolve_app(app, remote, kiku.git)
    build = latest_or_id(kiku.client, name, build_id)
    url = build.get("output_stream_url")
    if not url:
        kiku.printer.info(f"No build output for {build.get('id', build_id)}")
        return
    stream_output(kiku, str(url))


@click.command("builds:cache:purge")
@app_options
@click.option("-c", "--confirm", metavar="APP", help="Skip the prompt: the app's name.")
@pass_kiku
def purge_cache(kiku: CliContext, app: str | None, remote: str | None, confirm: str | None) -> None:
    """Delete the app's build cache; the next build starts from scratch."""
    name = resolve_app(app, remote, kiku.git)
    if confirm is None:
        kiku.printer.warn(
            f"WARNING: This will delete the build cache for ⬢ {name}.\n"
            f"To proceed, type {name} or re-run this command with --confirm {name}"
        )
        confirm = str(
            click.prompt(">", prompt_suffix=" ", default="", show_default=False, err=True)
        )
    if confirm.strip() != name:
        raise KikuCliError(f"Confirmation did not match {name}. Aborted.")
    with kiku.printer.action("Purging build cache for", app=name):
        kiku.client.delete(f"/apps/{segment(name)}/build-cache")


def register(cli: click.Group) -> None:
    add_command(cli, list_builds)
    add_command(cli, info)
    add_command(cli, output)
    add_command(cli, purge_cache)
