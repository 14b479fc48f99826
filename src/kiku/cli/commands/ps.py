"""ps: list dynos, scale and resize the formation, restart and stop dynos."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from kiku.cli import KikuCliError
from kiku.cli.client import KikuClient, segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app
from kiku.cli.printer import Printer, time_ago

# `web=2`, `worker+1`, `web-1`, each with an optional `:SIZE` (Heroku's ps:scale grammar).
SCALE_ARG = re.compile(r"^([\w-]+)([=+-]\d+)(?::([\w-]+))?$", re.ASCII)
SCALE_USAGE = "Usage: kiku ps:scale web=2 worker+1"
# `web=standard-2x` (ps:type); a lone `SIZE` applies to every process type.
TYPE_ARG = re.compile(r"^([\w-]+)=([\w-]+)$", re.ASCII)
SIZE_ARG = re.compile(r"^[\w-]+$", re.ASCII)
ONE_OFF_TYPE = "run"
# What Heroku's CLI shows when the API gives a dyno no size.
DEFAULT_SIZE = "1X"


@dataclass(frozen=True)
class ScaleChange:
    """One `ps:scale` argument as sent: quantity is a string, maybe relative (`+1`)."""

    type: str
    quantity: str
    size: str | None = None

    def update(self) -> dict[str, str]:
        body = {"type": self.type, "quantity": self.quantity}
        if self.size is not None:
            body["size"] = self.size
        return body


def parse_scale(args: Sequence[str]) -> list[ScaleChange]:
    """`["web=2", "worker+1:basic"]` as changes; any other shape is an error."""
    changes = []
    for arg in args:
        match = SCALE_ARG.match(arg)
        if match is None:
            raise KikuCliError(f"Invalid scale argument '{arg}'.\n{SCALE_USAGE}")
        type_, amount, size = match.groups()
        quantity = amount[1:] if amount[0] == "=" else amount
        changes.append(ScaleChange(type_, quantity, size))
    return changes


def parse_resize(args: Sequence[str]) -> list[tuple[str | None, str]]:
    """`["web=standard-2x"]` as `[("web", size)]`; a lone `["basic"]` as `[(None, "basic")]`."""
    if len(args) == 1 and "=" not in args[0]:
        if SIZE_ARG.match(args[0]) is None:
            raise KikuCliError(f"Invalid dyno size '{args[0]}'.")
        return [(None, args[0])]
    resizes: list[tuple[str | None, str]] = []
    for arg in args:
        match = TYPE_ARG.match(arg)
        if match is None:
            raise KikuCliError(
                f"Invalid argument '{arg}'.\n"
                "Usage: kiku ps:type TYPE=SIZE [TYPE=SIZE ...] or kiku ps:type SIZE"
            )
        resizes.append((match[1], match[2]))
    return resizes


def _process_number(name: str) -> int:
    _, _, number = name.partition(".")
    return int(number) if number.isdigit() else 0


def _dicts(found: Any) -> list[dict[str, Any]]:
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def group_dynos(dynos: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Heroku's `ps` view: `(header, lines)` per command, one-off dynos in a group of their own.

    Groups come in the order their first dyno has by name; lines by process number.
    """
    groups: dict[str, list[tuple[int, str]]] = {}
    for dyno in sorted(dynos, key=lambda d: _text(d.get("name"))):
        name = _text(dyno.get("name"))
        size = _text(dyno.get("size")) or DEFAULT_SIZE
        since = time_ago(dyno.get("updated_at"))
        state = _text(dyno.get("state"))
        command = _text(dyno.get("command"))
        if dyno.get("type") == ONE_OFF_TYPE:
            key = f"{ONE_OFF_TYPE}: one-off processes"
            line = f"{name} ({size}): {state} {since}: {command}"
        else:
            key = f"{_text(dyno.get('type'))} ({size}): {command}"
            line = f"{name}: {state} {since}"
        groups.setdefault(key, []).append((_process_number(name), line))
    return [
        (key, [line for _, line in sorted(lines, key=lambda pair: pair[0])])
        for key, lines in groups.items()
    ]


def get_formation(client: KikuClient, app: str) -> list[dict[str, Any]]:
    """The app's formation; having no process types at all is an error, as on Heroku."""
    formation = _dicts(client.get(f"/apps/{segment(app)}/formation"))
    if not formation:
        raise KikuCliError(
            f"No process types on ⬢ {app}.\nUpload a Procfile to add process types.\n"
            "https://devcenter.heroku.com/articles/procfile"
        )
    return formation


def print_formation(printer: Printer, formation: Sequence[dict[str, Any]]) -> None:
    """`=== Process Types` (type, size, qty) and `=== Dyno Totals` (per size)."""
    ordered = sorted(formation, key=lambda f: _text(f.get("type")))
    totals: dict[str, int] = {}
    for process in ordered:
        quantity = process.get("quantity")
        size = _text(process.get("size"))
        totals[size] = totals.get(size, 0) + (quantity if isinstance(quantity, int) else 0)
    printer.header("Process Types")
    _table(
        printer,
        ["Type", "Size", "Qty"],
        [[_text(p.get("type")), _text(p.get("size")), _text(p.get("quantity"))] for p in ordered],
    )
    printer.line()
    printer.header("Dyno Totals")
    _table(printer, ["Type", "Total"], [[size, str(total)] for size, total in totals.items()])


def _table(printer: Printer, headings: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(len(headings))]
    printer.columns([headings, ["─" * width for width in widths], *rows])


def _dyno_or_type(
    argument: str | None, dyno_name: str | None, process_type: str | None
) -> tuple[str, str] | None:
    """`("dyno", "web.1")` or `("type", "web")`; an argument with a dot names a dyno."""
    given = [value for value in (argument, dyno_name, process_type) if value]
    if len(given) > 1:
        raise KikuCliError("Give only one of DYNO_OR_TYPE, --dyno-name and --process-type.")
    if process_type:
        return ("type", process_type)
    if dyno_name:
        return ("dyno", dyno_name)
    if argument:
        return ("dyno", argument) if "." in argument else ("type", argument)
    return None


F = TypeVar("F", bound=Callable[..., object])


def _target_options(f: F) -> F:
    f = click.option("-p", "--process-type", help="Name of the process type (web, worker).")(f)
    return click.option("-d", "--dyno-name", help="Name of the dyno (web.1).")(f)


@click.command("ps")
@click.argument("types", nargs=-1, metavar="[TYPE]...")
@app_options
@json_option
@pass_kiku
def list_dynos(
    kiku: CliContext, types: tuple[str, ...], app: str | None, remote: str | None, as_json: bool
) -> None:
    """List an app's dynos, or only those of the given process types."""
    name = resolve_app(app, remote, kiku.git)
    dynos = _dicts(kiku.client.get(f"/apps/{segment(name)}/dynos"))
    if types:
        dynos = [d for d in dynos if d.get("type") in types]
        for wanted in types:
            if not any(d.get("type") == wanted for d in dynos):
                raise KikuCliError(f"No {wanted} dynos on ⬢ {name}")
    dynos.sort(key=lambda d: _text(d.get("name")))
    if as_json:
        kiku.printer.json(dynos)
        return
    if not dynos:
        kiku.printer.line(f"No dynos on ⬢ {name}")
        return
    for key, lines in group_dynos(dynos):
        kiku.printer.header(f"{key} ({len(lines)})")
        for line in lines:
            kiku.printer.line(line)
        kiku.printer.line()


@click.command("ps:scale")
@click.argument("changes", nargs=-1, metavar="[TYPE=N|TYPE+N|TYPE-N[:SIZE]]...")
@app_options
@pass_kiku
def scale(kiku: CliContext, changes: tuple[str, ...], app: str | None, remote: str | None) -> None:
    """Scale dyno quantity up or down (web=2, worker+1, web-1; web=2:standard-2x resizes too).

    With no arguments, show the formation in a form ps:scale takes back.
    """
    parsed = parse_scale(changes)
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    if not parsed:
        formation = get_formation(client, name)
        kiku.printer.line(
            " ".join(
                sorted(f"{f.get('type')}={f.get('quantity')}:{f.get('size')}" for f in formation)
            )
        )
        return
    with kiku.printer.action("Scaling dynos") as action:
        updated = _dicts(
            client.patch(
                f"/apps/{segment(name)}/formation",
                json={"updates": [change.update() for change in parsed]},
            )
        )
        changed = {change.type for change in parsed}
        running = [
            f"{f.get('type')} at {f.get('quantity')}:{f.get('size')}"
            for f in updated
            if f.get("type") in changed
        ]
        if running:
            action.status = f"done, now running {', '.join(running)}"


@click.command("ps:type")
@click.argument("sizes", nargs=-1, metavar="[TYPE=SIZE]... | [SIZE]")
@app_options
@pass_kiku
def resize(kiku: CliContext, sizes: tuple[str, ...], app: str | None, remote: str | None) -> None:
    """Show or set dyno sizes: TYPE=SIZE per process type, or one SIZE for every type."""
    resizes = parse_resize(sizes) if sizes else []
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    if resizes:
        known = [_text(f.get("type")) for f in get_formation(client, name)]
        updates: list[dict[str, str]] = []
        for type_, size in resizes:
            if type_ is None:
                updates.extend({"type": t, "size": size} for t in known)
            elif type_ not in known:
                raise KikuCliError(
                    f"Type {type_} not found in process formation.\nTypes: {', '.join(known)}"
                )
            else:
                updates.append({"type": type_, "size": size})
        with kiku.printer.action("Scaling dynos on", app=name):
            client.patch(f"/apps/{segment(name)}/formation", json={"updates": updates})
    print_formation(kiku.printer, get_formation(client, name))


@click.command("ps:restart")
@click.argument("target", metavar="[DYNO_OR_TYPE]", required=False)
@app_options
@_target_options
@pass_kiku
def restart(
    kiku: CliContext,
    target: str | None,
    app: str | None,
    remote: str | None,
    dyno_name: str | None,
    process_type: str | None,
) -> None:
    """Restart a dyno (web.1), every dyno of a process type (web), or all dynos."""
    chosen = _dyno_or_type(target, dyno_name, process_type)
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    base = f"/apps/{segment(name)}"
    if chosen is None:
        verb, path = "Restarting all dynos on", f"{base}/dynos"
    elif chosen[0] == "dyno":
        verb, path = f"Restarting dyno {chosen[1]} on", f"{base}/dynos/{segment(chosen[1])}"
    else:
        verb, path = f"Restarting {chosen[1]} dynos on", f"{base}/formations/{segment(chosen[1])}"
    with kiku.printer.action(verb, app=name):
        client.delete(path)


@click.command("ps:stop")
@click.argument("target", metavar="DYNO_OR_TYPE", required=False)
@app_options
@_target_options
@pass_kiku
def stop(
    kiku: CliContext,
    target: str | None,
    app: str | None,
    remote: str | None,
    dyno_name: str | None,
    process_type: str | None,
) -> None:
    """Stop a dyno (web.1, run.1234) or every dyno of a process type (web)."""
    chosen = _dyno_or_type(target, dyno_name, process_type)
    if chosen is None:
        raise KikuCliError(
            "Please specify a process type or dyno name to stop.\nSee more help with --help"
        )
    name = resolve_app(app, remote, kiku.git)
    client = kiku.client
    kind, value = chosen
    if kind == "dyno":
        verb = f"Stopping dyno {value} on"
        path = f"/apps/{segment(name)}/dynos/{segment(value)}/actions/stop"
    else:
        verb = f"Stopping {value} dynos on"
        path = f"/apps/{segment(name)}/formations/{segment(value)}/actions/stop"
    with kiku.printer.action(verb, app=name):
        client.post(path)


def register(cli: click.Group) -> None:
    add_command(cli, list_dynos)
    add_command(cli, scale, "scale", "dyno:scale")
    add_command(cli, resize, "type", "ps:resize", "resize", "dyno:type", "dyno:resize")
    add_command(cli, restart, "restart", "dyno:restart")
    add_command(cli, stop, "stop", "ps:kill", "kill", "dyno:stop", "dyno:kill")
