"""local: run the Procfile on this machine, without the platform, like `heroku local`."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from kiku import procfile
from kiku.cli import KikuCliError
from kiku.cli.commands import add_command
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.local_runner import (
    PORT_STEP,
    EnvFileError,
    Event,
    Exited,
    Killing,
    LocalRunner,
    Output,
    ProcessSpec,
    Stopping,
    parse_env,
    plan,
    signal_name,
)
from kiku.cli.printer import Printer, label_style

DEFAULT_PROCFILE = "Procfile"
DEFAULT_ENV_FILE = ".env"
DEFAULT_PORT = 5000
MAX_PORT = 65535
# The release phase runs on deploys, not with the app's processes (as heroku local).
SKIPPED_BY_DEFAULT = ("release",)
CONCURRENCY_ITEM = re.compile(r"^([A-Za-z0-9_-]+)=(\d+)$")
CONCURRENCY_USAGE = "Usage: kiku local -c web=2,worker=1"


def _types_list(types: Mapping[str, str]) -> str:
    return ", ".join(types)


def select_types(given: tuple[str, ...], types: Mapping[str, str]) -> list[str]:
    """`("web,worker",)` or `("web", "worker")` as names; none given: all but `release`."""
    wanted = [name for arg in given for name in arg.split(",") if name]
    if not wanted:
        return [name for name in types if name not in SKIPPED_BY_DEFAULT]
    for name in wanted:
        if name not in types:
            raise KikuCliError(
                f"Process type {name} not found in Procfile.\nTypes: {_types_list(types)}"
            )
    return wanted


def parse_concurrency(text: str | None, types: Mapping[str, str]) -> dict[str, int]:
    """`web=2,worker=1` as `{"web": 2, "worker": 1}`; every name must be in the Procfile."""
    counts: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        match = CONCURRENCY_ITEM.match(item.strip())
        if match is None:
            raise KikuCliError(f"Invalid concurrency '{item.strip()}'.\n{CONCURRENCY_USAGE}")
        name, count = match[1], int(match[2])
        if name not in types:
            raise KikuCliError(
                f"Process type {name} not found in Procfile.\nTypes: {_types_list(types)}"
            )
        counts[name] = count
    return counts


def base_port(option: int | None, dotenv: Mapping[str, str], environ: Mapping[str, str]) -> int:
    """`--port`, else PORT from the env file, else $PORT, else 5000."""
    if option is not None:
        return option
    for where, values in (("the env file", dotenv), ("$PORT", environ)):
        value = values.get("PORT")
        if value:
            if not value.isdigit() or not 0 < int(value) <= MAX_PORT:
                raise KikuCliError(f"PORT from {where} is not a port number: {value!r}")
            return int(value)
    return DEFAULT_PORT


def read_procfile(path: Path, given: bool) -> dict[str, str]:
    if not path.is_file():
        if given:
            raise KikuCliError(f"No Procfile found at {path}.")
        raise KikuCliError("No Procfile found. Create one or pass --procfile.")
    try:
        types = procfile.parse(path.read_text(encoding="utf-8"))
    except procfile.ProcfileError as exc:
        raise KikuCliError(str(exc)) from None
    if not types:
        raise KikuCliError(f"{path} declares no process types.")
    return types


def read_env_file(path: Path, given: bool) -> dict[str, str] | None:
    """The file's values; None when the default `.env` is absent (that is fine)."""
    if not path.is_file():
        if given:
            raise KikuCliError(f"No env file found at {path}.")
        return None
    try:
        return parse_env(path.read_text(encoding="utf-8"), source=str(path))
    except EnvFileError as exc:
        raise KikuCliError(str(exc)) from None


def renderer(printer: Printer, processes: list[ProcessSpec]) -> Callable[[Event], None]:
    """Turns the runner's events into heroku local's lines.

    Output: `HH:MM:SS web.1   | line` on stdout, the label in the process's colour.
    Exits and shutdown go to stderr: `HH:MM:SS web.1    Exited with exit code 0`,
    `[DONE] Killing all processes with signal SIGTERM`.
    """
    width = max(len(spec.name) for spec in processes)

    def label(spec: ProcessSpec, at_text: str) -> str:
        return f"{at_text} {spec.name:<{width}}"

    def render(event: Event) -> None:
        at = event.at.strftime("%H:%M:%S")
        if isinstance(event, Output):
            spec = event.process
            printer.labelled(label(spec, at), event.line, label_style(spec.index))
        elif isinstance(event, Exited):
            spec = event.process
            printer.labelled(
                label(spec, at),
                f"Exited with exit code {event.status}",
                label_style(spec.index),
                separator=" ",
                stderr=True,
            )
        elif isinstance(event, Stopping):
            printer.tagged("DONE", f"Killing all processes with signal {signal_name(event.signal)}")
        elif isinstance(event, Killing):
            printer.tagged(
                "WARN",
                f"Killing {event.process.name} with SIGKILL: "
                f"still running {event.after:g}s after SIGTERM",
            )

    return render


@contextmanager
def signals_stop(runner: LocalRunner) -> Iterator[None]:
    """While running, Ctrl-C and SIGTERM stop the runner instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        runner.stop(signum)

    previous = {
        number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


@click.command("local")
@click.argument("types", nargs=-1, metavar="[TYPE[,TYPE...]]")
@click.option("-f", "--procfile", "procfile_path", help="Procfile to use (default: ./Procfile).")
@click.option("-e", "--env", "env_path", help="Env file to read (default: ./.env, if present).")
@click.option(
    "-p",
    "--port",
    type=click.IntRange(1, MAX_PORT),
    help="Port of the first process (default: PORT from the env file, $PORT, or 5000).",
)
@click.option("-c", "--concurrency", help="How many of each type to run: web=2,worker=1.")
@pass_kiku
def local(
    kiku: CliContext,
    types: tuple[str, ...],
    procfile_path: str | None,
    env_path: str | None,
    port: int | None,
    concurrency: str | None,
) -> None:
    """Run the app's Procfile here, without the platform, as `heroku local` does.

    Runs every process type but `release` (or only the TYPEs given) with `bash -c`, in
    the Procfile's directory, with the env file's variables and PORT 5000 for the first
    type, 5100 for the second, … (+1 per extra instance). Output is prefixed with the
    time and the process name. When one process exits, or on Ctrl-C, all are stopped.
    """
    here = kiku.git.cwd or Path.cwd()
    procfile_file = here / (procfile_path or DEFAULT_PROCFILE)
    procfile_types = read_procfile(procfile_file, given=procfile_path is not None)
    env_file = here / (env_path or DEFAULT_ENV_FILE)
    dotenv = read_env_file(env_file, given=env_path is not None)

    selected = select_types(types, procfile_types)
    counts = parse_concurrency(concurrency, procfile_types)
    quantities = {name: counts.get(name, 1) if name in selected else 0 for name in procfile_types}
    environ = kiku.settings.environ or os.environ
    first_port = base_port(port, dotenv or {}, environ)
    if first_port + PORT_STEP * (len(procfile_types) - 1) + max(quantities.values()) - 1 > MAX_PORT:
        raise KikuCliError(f"Port {first_port} leaves no room for every process's PORT.")

    processes = plan(procfile_types, first_port, quantities)
    if not processes:
        raise KikuCliError("No processes to run: every concurrency is 0.")
    runner = LocalRunner(
        procfile_types,
        {**environ, **(dotenv or {})},
        first_port,
        quantities,
        cwd=procfile_file.parent,
        emit=renderer(kiku.printer, processes),
    )
    if dotenv is not None:
        kiku.printer.tagged("OKAY", f"Loaded ENV {env_file.name} File as KEY=VALUE Format")
    with signals_stop(runner):
        try:
            code = runner.run()
        except OSError as exc:
            raise KikuCliError(f"Could not start the processes: {exc}") from None
    if code:
        click.get_current_context().exit(code)


def register(cli: click.Group) -> None:
    add_command(cli, local, "local:start")
