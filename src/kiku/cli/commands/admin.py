"""`kiku admin:*`: operator commands run on the server host, against its data directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kiku.cli import KikuCliError
from kiku.errors import KikuError
from kiku.settings import Settings

# The store and its migrations take ~1 s to import: only these commands pay for it, not
# every `kiku` invocation (the CLI builds its command list at each start).
if TYPE_CHECKING:
    from kiku.accounts.accounts import Enrolment
    from kiku.platform import Platform

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="The server's state directory (the same as `kiku server --data-dir`) [~/.kiku].",
)


def _platform(data_dir: Path | None) -> Platform:
    from kiku.platform import Platform

    try:
        settings = Settings.from_env(os.environ, data_dir=data_dir.resolve() if data_dir else None)
    except ValueError as exc:
        raise KikuCliError(str(exc)) from exc
    return Platform.build(settings)


def _show_enrolment(enrolment: Enrolment) -> None:
    import segno

    click.echo(f"Created {enrolment.user.email} (id {enrolment.user.id}).")
    click.echo("")
    click.echo("Two-step login is required. Add this account to an authenticator app:")
    click.echo(f"  secret: {enrolment.totp_secret}")
    click.echo(f"  URI:    {enrolment.otpauth_uri}")
    click.echo("")
    qr = segno.make(enrolment.otpauth_uri, error="m")
    qr.terminal(compact=True)
    click.echo("")
    click.echo("Recovery codes (each works once in place of a two-factor code; keep them safe):")
    for code in enrolment.recovery_codes:
        click.echo(f"  {code}")


@click.command("admin:create-user")
@click.argument("email")
@click.option("--password", help="The account's password (asked for when not given).")
@click.option("--verified", is_flag=True, help="Mark the account verified.")
@click.option("--name", help="The account owner's full name.")
@click.option("--json", "as_json", is_flag=True, help="Print {id, email, totp_secret} as JSON.")
@data_dir_option
def create_user(
    email: str,
    password: str | None,
    verified: bool,
    name: str | None,
    as_json: bool,
    data_dir: Path | None,
) -> None:
    """Create an account and enrol its TOTP second factor at once."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    platform = _platform(data_dir)
    try:
        enrolment = platform.accounts.create_user(email, password, verified=verified, name=name)
    except KikuError as exc:
        raise KikuCliError(exc.message, error_id=exc.id) from exc
    finally:
        platform.close()
    if as_json:
        user = enrolment.user
        payload = {
            "id": user.id,
            "email": user.email,
            "totp_secret": enrolment.totp_secret,
            "otpauth_uri": enrolment.otpauth_uri,
            "recovery_codes": enrolment.recovery_codes,
        }
        click.echo(json.dumps(payload))
        return
    _show_enrolment(enrolment)


@click.command("admin:reset-2fa")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print {id, email, totp_secret} as JSON.")
@data_dir_option
def reset_two_factor(email: str, as_json: bool, data_dir: Path | None) -> None:
    """Give a user who lost their device and recovery codes a new TOTP secret."""
    platform = _platform(data_dir)
    try:
        enrolment = platform.accounts.reset_second_factor(email)
    except KikuError as exc:
        raise KikuCliError(exc.message, error_id=exc.id) from exc
    finally:
        platform.close()
    if as_json:
        user = enrolment.user
        click.echo(
            json.dumps({"id": user.id, "email": user.email, "totp_secret": enrolment.totp_secret})
        )
        return
    _show_enrolment(enrolment)


def register(cli: click.Group) -> None:
    cli.add_command(create_user)
    cli.add_command(reset_two_factor)
