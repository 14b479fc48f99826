"""run: one-off dynos, attached over a WebSocket (`run`) or detached (`run:detached`)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from kiku.cli import KikuCliError
from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app


def _env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for group in pairs:
        for pair in group.split(";"):
            if not pair.strip():
                continue
            key, sep, value = pair.partition("=")
            if not sep:
                raise KikuCliError(f"--env takes KEY=VALUE pairs, got {pair!r}.")
            env[key.strip()] = value
    return env


def _create(
    kiku: CliContext,
    app: str,
    command: tuple[str, ...],
    size: str | None,
    env: tuple[str, ...],
    attach: bool,
) -> Any:
    body: dict[str, Any] = {
        "command": " ".join(command),
        "attach": attach,
        "env": _env(env),
        "type": "run",
    }
    if size:
        body["size"] = size
    return kiku.client.post(f"/apps/{segment(app)}/dynos", json=body)


F = TypeVar("F", bound=Callable[..., Any])


def run_options(f: F) -> F:
    """The command, and the size and env of its dyno."""
    f = click.option("-e", "--env", multiple=True, help="KEY=VALUE (several split by ;).")(f)
    f = click.option("-s", "--size", help="Dyno size, e.g. standard-2x.")(f)
    return click.argument("command", nargs=-1, required=True)(f)


@click.command("run", context_settings={"ignore_unknown_options": True})
@run_options
@click.option("-x", "--exit-code", is_flag=True, help="Exit with the command's status (always).")
@click.option("--no-tty", is_flag=True, help="Do not allocate a terminal (kiku never does yet).")
@app_options
@pass_kiku
def run(
    kiku: CliContext,
    command: tuple[str, ...],
    size: str | None,
    env: tuple[str, ...],
    exit_code: bool,
    no_tty: bool,
    app: str | None,
    remote: str | None,
) -> None:
    """Run a one-off process in a dyno of the app, attached to this terminal."""
    name = resolve_app(app, remote, kiku.git)
    dyno = _create(kiku, name, command, size, env, attach=True)
    kiku.printer.info(
        f"Running {' '.join(command)} on ⬢ {name}... up, {dyno['name']} ({dyno.get('size')})"
    )
    url = dyno.get("attach_url")
    if not url:
        raise KikuCliError("The API gave no attach URL for the dyno.")
    sys.exit(_attach(str(url), kiku.token() or ""))


def _attach(url: str, token: str) -> int:
    """Pipe this terminal to the dyno until it exits; answers its exit status."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    try:
        connection = connect(url, additional_headers={"Authorization": f"Bearer {token}"})
    except (OSError, ConnectionClosed) as exc:
        raise KikuCliError(f"Could not attach to the dyno: {exc}") from exc

    def pump_stdin() -> None:
        try:
            stdin = sys.stdin.fileno()
            while chunk := os.read(stdin, 65536):
                connection.send(chunk)
            connection.send(json.dumps({"eof": True}))
        except (ConnectionClosed, OSError, ValueError):
            pass

    threading.Thread(target=pump_stdin, daemon=True).start()
    code = 1
    with connection:
        try:
            for message in connection:
                if isinstance(message, bytes):
                    sys.stdout.buffer.write(message)
                    sys.stdout.buffer.flush()
                    continue
                data = json.loads(message)
                if "error" in data:
                    click.echo(f" ▸    {data['error']}", err=True)
                code = int(data.get("exit_code", code))
        except ConnectionClosed:
            pass
    return code


@click.command("run:detached", context_settings={"ignore_unknown_options": True})
@run_options
@app_options
@pass_kiku
def run_detached(
    kiku: CliContext,
    command: tuple[str, ...],
    size: str | None,
    env: tuple[str, ...],
    app: str | None,
    remote: str | None,
) -> None:
    """Run a one-off process in the background; its output goes to the app's logs."""
    name = resolve_app(app, remote, kiku.git)
    dyno = _create(kiku, name, command, size, env, attach=False)
    kiku.printer.info(
        f"Running {' '.join(command)} on ⬢ {name}... done, {dyno['name']} ({dyno.get('size')})"
    )
    kiku.printer.line(f"Run kiku logs --app {name} --dyno {dyno['name']} to view the output.")


def register(cli: click.Group) -> None:
    add_command(cli, run)
    add_command(cli, run_detached)
