"""metrics: an app's router traffic and dyno memory per process type (`GET /apps/:app/metrics`).

$ kiku metrics -a myapp --minutes 30
=== ⬢ myapp Metrics (last 30 minutes)
Type  Requests    rpm  p50   p95   p99    2xx  3xx  4xx  5xx  Errors  Memory (rss/quota)
web       1204   40.1  4ms  18ms  40ms   1190    0   12    2  H12×2   21.5/512 MB
"""

from __future__ import annotations

from typing import Any

import click

from kiku.cli.client import segment
from kiku.cli.commands import add_command, app_options, json_option
from kiku.cli.context import CliContext, pass_kiku
from kiku.cli.gitremote import resolve_app

HEADERS = (
    "Type",
    "Requests",
    "rpm",
    "p50",
    "p95",
    "p99",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "Errors",
    "Memory (rss/quota)",
)
RIGHT = tuple(range(1, 10))  # the number columns


@click.command("metrics")
@app_options
@click.option("--type", "process_type", help="Only this process type (web, worker, ...).")
@click.option(
    "--minutes",
    type=click.IntRange(1, 1440),
    default=60,
    show_default=True,
    help="How far back to look (metrics are kept 24 hours).",
)
@json_option
@pass_kiku
def metrics(
    kiku: CliContext,
    app: str | None,
    remote: str | None,
    process_type: str | None,
    minutes: int,
    as_json: bool,
) -> None:
    """Requests, response times, status codes, errors and memory per process type."""
    name = resolve_app(app, remote, kiku.git)
    params = {"minutes": str(minutes)}
    if process_type:
        params["process_type"] = process_type
    found = kiku.client.get(f"/apps/{segment(name)}/metrics", params=params)
    if as_json:
        kiku.printer.json(found)
        return
    kiku.printer.header(f"⬢ {name} Metrics (last {minutes} minutes)")
    if not found["process_types"]:
        kiku.printer.line("No dynos and no traffic in that time.")
        return
    kiku.printer.table(HEADERS, [row(t) for t in found["process_types"]], RIGHT)


def row(process_type: dict[str, Any]) -> list[str]:
    summary = process_type["summary"]
    times, status = summary["response_time_ms"], summary["status"]
    errors = " ".join(f"{code}×{n}" for code, n in summary["errors"].items()) or "-"
    return [
        process_type["type"],
        str(summary["requests"]),
        f"{summary['throughput_rpm']:.1f}",
        *(_ms(times[p]) for p in ("p50", "p95", "p99")),
        *(str(status[c]) for c in ("2xx", "3xx", "4xx", "5xx")),
        errors,
        _memory(summary["memory_mb"]),
    ]


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value}ms"


def _memory(memory: dict[str, float] | None) -> str:
    if not memory:
        return "-"
    return f"{memory['rss']:.1f}/{memory['quota']:.0f} MB"


def register(cli: click.Group) -> None:
    add_command(cli, metrics)
