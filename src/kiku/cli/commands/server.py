"""`kiku server`: run the platform in the foreground."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from kiku.cli import KikuCliError
from kiku.errors import KikuError
from kiku.settings import (
    DEFAULT_API_HOST,
    DEFAULT_API_PORT,
    DEFAULT_RENDEZVOUS_PORT,
    DEFAULT_ROUTER_PORT,
    DEFAULT_ROUTER_TLS_PORT,
    Settings,
)


def _ready(settings: Settings) -> None:
    click.echo(
        f"kiku is up: API {settings.api_url}, apps at "
        f"{settings.web_url('APP').rstrip('/')}, data in {settings.data_dir}",
        err=True,
    )


@click.command("server")
@click.option("--data-dir", type=click.Path(path_type=Path), help="State directory [~/.kiku].")
@click.option("--api-host", default=DEFAULT_API_HOST, show_default=True)
@click.option("--api-port", type=int, default=DEFAULT_API_PORT, show_default=True)
@click.option("--router-port", type=int, default=DEFAULT_ROUTER_PORT, show_default=True)
@click.option(
    "--router-tls-port",
    type=int,
    default=DEFAULT_ROUTER_TLS_PORT,
    show_default=True,
    help="HTTPS port of the router (kiku's local CA signs its *.DOMAIN certificate).",
)
@click.option(
    "--router-workers",
    type=int,
    default=None,
    help="Router processes sharing the ports [one per core; KIKU_ROUTER_WORKERS].",
)
@click.option("--domain", default=None, help="Apps are served at APP.DOMAIN [localhost].")
@click.option(
    "--rendezvous-port",
    type=int,
    default=DEFAULT_RENDEZVOUS_PORT,
    show_default=True,
    help="TLS attach port for one-off dynos (the official Heroku CLI's run).",
)
def server(
    data_dir: Path | None,
    api_host: str,
    api_port: int,
    router_port: int,
    router_tls_port: int,
    router_workers: int | None,
    domain: str | None,
    rendezvous_port: int,
) -> None:
    """Start the kiku platform in the foreground (Ctrl-C stops it)."""
    from kiku import server as platform_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env(
            os.environ,
            data_dir=data_dir.resolve() if data_dir else None,
            api_host=api_host,
            api_port=api_port,
            router_port=router_port,
            router_tls_port=router_tls_port,
            router_workers=router_workers,
            domain=domain,
            rendezvous_port=rendezvous_port,
        )
    except ValueError as exc:
        raise KikuCliError(str(exc)) from exc
    try:
        code = platform_server.run(settings, on_ready=_ready)
    except KikuError as exc:
        raise KikuCliError(exc.message, error_id=exc.id) from exc
    sys.exit(code)


def register(cli: click.Group) -> None:
    cli.add_command(server)
