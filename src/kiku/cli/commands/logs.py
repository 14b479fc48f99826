"""logs: an app's log stream (dynos, router, dyno manager, API), as `heroku logs`.

A log session is asked for (`POST /apps/:app/log-sessions`) and its URL read as an event
stream, without the token (the URL is the secret). A tail that drops (a restart of
`kiku server`, a proxy) reconnects with `Last-Event-ID`, so no line is shown twice.
"""

from __future__ import annotations

import contextlib
import re
import time
import zlib

import click
import httpx
from rich.text import Text

from kiku.cli import KikuCliError
from kiku.cli.client import ApiError, ApiUnreachable, segment
from kiku.cli.commands import add_command, app_options
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app
from kiku.cli.printer import Printer

MAX_LINES = 1500
LINE = re.compile(r"^(\S+) (\w+)\[([^\]]+)\]:(.*)$")
STYLES = ("cyan", "green", "yellow", "magenta", "blue", "bright_cyan", "bright_green")
RECONNECTS = 30  # a tail tries this many times in a row (a second apart) to get back


@click.command("logs")
@app_options
@click.option(
    "-n", "--num", type=click.IntRange(1, MAX_LINES), default=None,
    help="Number of lines to show first (default 100, at most 1500).",
)  # fmt: skip
@click.option("-t", "--tail", is_flag=True, help="Keep showing new lines as they come.")
@click.option(
    "-s", "--source", type=click.Choice(["app", "heroku"]),
    help="Only lines from this source: app (your dynos, API events) or heroku (platform).",
)  # fmt: skip
@click.option(
    "-d", "-p", "--dyno", "dyno",
    help="Only lines from this dyno or process type (web.1, web, router, api).",
)  # fmt: skip
@click.option("--force-colors", is_flag=True, help="Colour the output even when piped.")
@pass_kiku
def logs(
    kiku: CliContext,
    app: str | None,
    remote: str | None,
    num: int | None,
    tail: bool,
    source: str | None,
    dyno: str | None,
    force_colors: bool,
) -> None:
    """Show an app's logs."""
    name = resolve_app(app, remote, kiku.git)
    body: dict[str, object] = {"lines": 100 if num is None else num, "tail": tail}
    if source:
        body["source"] = source
    if dyno:
        body["dyno"] = dyno
    session = kiku.client.post(f"/apps/{segment(name)}/log-sessions", json=body)
    show = LogPrinter(kiku.printer, force_colors)
    with contextlib.suppress(KeyboardInterrupt):  # ^C ends a tail, quietly
        _follow(kiku, name, session["logplex_url"], body, show, tail)


def _follow(
    kiku: CliContext, name: str, url: str, body: dict[str, object], show: LogPrinter, tail: bool
) -> None:
    last_id: str | None = None
    failures = 0
    with kiku.make_client(None) as anonymous:
        http = anonymous._http
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                with http.stream("GET", url, headers=headers, timeout=None) as response:
                    if response.status_code == 404 and tail and last_id is not None:
                        # The session expired while we were away: a new one, no backlog.
                        session = kiku.client.post(
                            f"/apps/{segment(name)}/log-sessions", json={**body, "lines": 0}
                        )
                        url = session["logplex_url"]
                        continue
                    if not response.is_success:
                        response.read()
                        raise ApiError.from_response(response)
                    failures = 0
                    for line in response.iter_lines():
                        if line.startswith("id:"):
                            last_id = line[3:].strip()
                        elif line.startswith("data:"):
                            data = line[5:]
                            show(data[1:] if data.startswith(" ") else data)
            except httpx.TransportError as exc:
                if not tail:
                    raise ApiUnreachable(f"Could not read the logs: {exc}") from exc
                failures += 1
                if failures > RECONNECTS:
                    raise KikuCliError(
                        f"Lost the log stream and could not get it back ({exc}); "
                        "is kiku server running?"
                    ) from exc
                time.sleep(1)
                continue
            if not tail:
                return


class LogPrinter:
    """Prints lines; in a terminal (or with --force-colors) each process gets a colour."""

    def __init__(self, printer: Printer, force: bool) -> None:
        self.printer = printer
        self.force = force
        self.color = force or printer.is_terminal()

    def __call__(self, line: str) -> None:
        match = LINE.match(line) if self.color else None
        if match is None:
            self.printer.raw(line)
            return
        stamp, source, process, message = match.groups()
        kind = process.split(".")[0]
        style = "bright_black" if source == "heroku" and kind != "router" else None
        style = style or STYLES[zlib.crc32(kind.encode()) % len(STYLES)]
        text = Text(stamp + " ", style="dim")
        text.append(f"{source}[{process}]:", style=style)
        text.append(message)
        self.printer.styled(text, self.force)


def register(cli: click.Group) -> None:
    add_command(cli, logs)
