"""run: one-off dynos, attached over a WebSocket (`run`) or detached (`run:detached`)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlencode

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
    tty: bool = False,
) -> Any:
    body: dict[str, Any] = {
        "command": " ".join(command),
        "attach": attach,
        "env": _env(env),
        "type": "run",
        "force_no_tty": not tty,
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
@click.option("--no-tty", is_flag=True, help="Do not give the dyno a terminal.")
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
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    if tty:
        columns, lines = shutil.get_terminal_size()
        env = (
            *env,
            f"TERM={os.environ.get('TERM', 'xterm')}",
            f"COLUMNS={columns}",
            f"LINES={lines}",
        )
    dyno = _create(kiku, name, command, size, env, attach=True, tty=tty)
    kiku.printer.info(
        f"Running {' '.join(command)} on ⬢ {name}... up, {dyno['name']} ({dyno.get('size')})"
    )
    base = kiku.settings.api_url.replace("http", "ws", 1)
    url = f"{base}/apps/{segment(name)}/dynos/{segment(dyno['name'])}/attach"
    with _raw_terminal(tty):
        code = _attach(url, kiku.token() or "", follow_size=tty)
    sys.exit(code)


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """Keystrokes go to the dyno's terminal as typed (Ctrl-C included) while attached."""
    if not enabled:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _attach(
    url: str,
    token: str,
    out: BinaryIO | None = None,
    feed_stdin: bool = True,
    follow_size: bool = False,
) -> int:
    """Pipe this terminal (or `out`) to the dyno until it exits; answers its exit status.
    `follow_size`: the dyno's terminal takes this one's size, now and at every change."""
    sink = out if out is not None else sys.stdout.buffer
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

    if feed_stdin:
        threading.Thread(target=pump_stdin, daemon=True).start()
    else:
        connection.send(json.dumps({"eof": True}))
    code = 1
    with connection, _window_size_followed(connection, follow_size):
        try:
            for message in connection:
                if isinstance(message, bytes):
                    sink.write(message)
                    sink.flush()
                    continue
                data = json.loads(message)
                if "error" in data:
                    click.echo(f" ▸    {data['error']}", err=True)
                code = int(data.get("exit_code", code))
        except ConnectionClosed:
            pass
    return code


@contextlib.contextmanager
def _window_size_followed(connection: Any, enabled: bool) -> Iterator[None]:
    """Send this terminal's size as a resize frame now and after every SIGWINCH. The signal
    handler only queues (a SimpleQueue is safe there); a thread does the sending."""
    if not enabled:
        yield
        return
    import queue
    import signal

    changes: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def send() -> None:
        from websockets.exceptions import ConnectionClosed

        while changes.get():
            try:
                columns, lines = os.get_terminal_size(sys.stdout.fileno())
                connection.send(json.dumps({"resize": {"rows": lines, "cols": columns}}))
            except (ConnectionClosed, OSError):
                return

    previous = signal.signal(signal.SIGWINCH, lambda *_: changes.put(True))
    changes.put(True)
    threading.Thread(target=send, daemon=True).start()
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)
        changes.put(False)


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


def _exec_url(kiku: CliContext, app: str, dyno: str, command: str) -> str:
    base = kiku.settings.api_url.replace("http", "ws", 1)
    return (
        f"{base}/apps/{segment(app)}/dynos/{segment(dyno)}/exec?{urlencode({'command': command})}"
    )


@click.command("ps:exec", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1)
@click.option("-d", "--dyno", "dyno", default="web.1", show_default=True, help="Dyno to enter.")
@app_options
@pass_kiku
def ps_exec(
    kiku: CliContext, command: tuple[str, ...], dyno: str, app: str | None, remote: str | None
) -> None:
    """Run a command (bash by default) inside a running dyno."""
    name = resolve_app(app, remote, kiku.git)
    kiku.printer.info(f"Connecting to {dyno} on ⬢ {name}...")
    url = _exec_url(kiku, name, dyno, " ".join(command) or "bash")
    sys.exit(_attach(url, kiku.token() or ""))


@click.command("ps:copy")
@click.argument("path")
@click.option("-d", "--dyno", "dyno", default="web.1", show_default=True, help="Dyno to copy from.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Local file to write.")
@app_options
@pass_kiku
def ps_copy(
    kiku: CliContext, path: str, dyno: str, output: str | None, app: str | None, remote: str | None
) -> None:
    """Copy a file out of a running dyno (relative paths are under /app)."""
    name = resolve_app(app, remote, kiku.git)
    target = Path(output or Path(path).name)
    if target.exists():
        raise KikuCliError(f"{target} exists; choose another name with --output.")
    url = _exec_url(kiku, name, dyno, f"cat -- {shlex.quote(path)}")
    with kiku.printer.action(f"Copying {path} from {dyno} to {target}"):
        with target.open("wb") as out:
            code = _attach(url, kiku.token() or "", out=out, feed_stdin=False)
        if code != 0:
            target.unlink(missing_ok=True)
            raise KikuCliError(f"Could not copy {path} (cat exited {code}).")


def register(cli: click.Group) -> None:
    add_command(cli, run)
    add_command(cli, run_detached)
    add_command(cli, ps_exec)
    add_command(cli, ps_copy)
