"""The `kiku` command: a Click group whose commands come from `kiku.cli.commands.*`."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import click

from kiku.cli.client import cli_version
from kiku.cli.context import CliContext, default_context
from kiku.cli.printer import Printer

# Each module exposes `register(cli)`; a module not written yet is skipped.
COMMAND_MODULES = (
    "auth",
    "apps",
    "git",
    "config",
    "releases",
    "ps",
    "run",
    "stack",
    "features",
    "metrics",
    "maintenance",
    "domains",
    "certs",
    "logs",
    "drains",
    "builds",
    "buildpacks",
    "local",
    "admin",
    "server",
)
COMMANDS_PACKAGE = "kiku.cli.commands"


def build_cli(modules: Sequence[str] = COMMAND_MODULES) -> click.Group:
    """A fresh `kiku` group with every available command module registered."""

    @click.group(name="kiku", context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(cli_version(), "-v", "--version", prog_name="kiku")
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        """kiku: a self-hosted Heroku. Commands are TOPIC:COMMAND, as in Heroku's CLI.

        Point it at a server with KIKU_API_URL (default http://127.0.0.1:5100).
        """
        if not isinstance(ctx.obj, CliContext):
            ctx.obj = default_context()
        ctx.call_on_close(ctx.obj.close)

    for name in modules:
        module_name = f"{COMMANDS_PACKAGE}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # not written yet; anything else missing is a real bug
            raise
        module.register(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (`kiku = "kiku.cli.main:main"`)."""
    cli = build_cli()
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="kiku")
    except Exception as exc:  # a bug, not a user error: keep tracebacks for KIKU_DEBUG
        if os.environ.get("KIKU_DEBUG"):
            raise
        Printer().error(f"{type(exc).__name__}: {exc} (set KIKU_DEBUG=1 for a traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
