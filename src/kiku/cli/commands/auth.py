"""auth: log in and out, show who you are and the token in use."""

from __future__ import annotations

import contextlib
import socket
import sys
from datetime import UTC, datetime
from typing import Any

import click

from kiku.cli import KikuCliError, NotLoggedIn
from kiku.cli.client import ApiError, KikuClient
from kiku.cli.commands import add_command
from kiku.cli.context import CliContext, pass_kiku

TWO_FACTOR_HEADER = "Heroku-Two-Factor-Code"
# Heroku's CLI warns about a token close to expiry; a month leaves time to log in again.
EXPIRY_WARNING_SECONDS = 30 * 24 * 3600


class WhoamiNotLoggedIn(KikuCliError):
    """auth:whoami without a valid token: Heroku's CLI says `not logged in`, exit 100."""

    exit_code = 100

    def __init__(self) -> None:
        super().__init__("not logged in")


def prompt_secret(text: str) -> str:
    """Read a secret without echoing it, also when stdin is a pipe (scripts, tests).

    `click.prompt(hide_input=True)` uses getpass, which reads the terminal even when
    stdin is piped; a piped secret is read from stdin instead.
    """
    if sys.stdin.isatty():
        return str(click.prompt(text, hide_input=True, err=True))
    click.echo(f"{text}: ", nl=False, err=True)
    line = sys.stdin.readline()
    click.echo(err=True)
    if not line:
        raise click.Abort()
    return line.rstrip("\r\n")


def login_description() -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"kiku CLI login from {socket.gethostname()} at {when}"


def create_authorization(
    client: KikuClient, email: str, password: str, body: dict[str, Any]
) -> Any:
    """POST /oauth/authorizations with Basic auth, asking for a 2FA code if needed."""
    try:
        return _authorize(client, (email, password), body, {})
    except ApiError as exc:
        if exc.id != "two_factor":
            raise
    code = str(click.prompt("Two-factor code", err=True)).strip()
    return _authorize(client, (email, password), body, {TWO_FACTOR_HEADER: code})


def _authorize(
    client: KikuClient, basic: tuple[str, str], body: dict[str, Any], headers: dict[str, str]
) -> Any:
    try:
        return client.post("/oauth/authorizations", json=body, auth=basic, headers=headers)
    except ApiError as exc:
        # During login a 401 is a wrong password, not a missing login: show the server's words.
        if exc.status == 401:
            raise KikuCliError(exc.message, error_id=exc.id) from exc
        raise


@click.command("auth:login")
@click.option("-i", "--interactive", is_flag=True, help="Log in with email and password.")
@click.option("-e", "--expires-in", type=click.IntRange(min=1), help="Token lifetime, seconds.")
@pass_kiku
def login(kiku: CliContext, interactive: bool, expires_in: int | None) -> None:
    """Log in with your kiku credentials (the token is kept in ~/.netrc)."""
    # There is no browser flow yet; -i is accepted so Heroku habits keep working.
    click.echo("kiku: Enter your login credentials", err=True)
    email = str(click.prompt("Email", err=True)).strip()
    password = prompt_secret("Password")
    body: dict[str, Any] = {"scope": ["global"], "description": login_description()}
    if expires_in is not None:
        body["expires_in"] = expires_in
    with kiku.make_client(None) as client:
        authorization = create_authorization(client, email, password, body)
    try:
        token = authorization["access_token"]["token"]
        account = (authorization.get("user") or {}).get("email") or email
    except (KeyError, TypeError, AttributeError) as exc:
        raise KikuCliError("The API's answer to the login has no access token.") from exc
    kiku.credentials.save(account, token)
    _configure_git(kiku)
    kiku.printer.line(f"Logged in as {account}")


def _configure_git(kiku: CliContext) -> None:
    """git pushes to the API host authenticate with the token, via `kiku git:credentials`."""
    from kiku.cli.commands.git import credential_helper_command

    try:
        kiku.git.use_credential_helper(kiku.settings.api_url, credential_helper_command())
    except KikuCliError as exc:
        kiku.printer.warn(f"Could not set up git credentials ({exc.message}); git will ask.")


@click.command("auth:logout")
@pass_kiku
def logout(kiku: CliContext) -> None:
    """Clear local authentication credentials and revoke the token."""
    stored = kiku.credentials.load()
    with kiku.printer.action("Logging out"):
        if stored is not None:
            _revoke(kiku, stored.password)
            kiku.credentials.remove()
    if kiku.settings.api_key:
        kiku.printer.warn("KIKU_API_KEY is set; it stays in use until you unset it.")


def _revoke(kiku: CliContext, token: str) -> None:
    # Best effort: the local entry goes either way, as with Heroku's CLI.
    with contextlib.suppress(KikuCliError), kiku.make_client(token) as client:
        client.delete("/oauth/sessions/~")


@click.command("auth:whoami")
@pass_kiku
def whoami(kiku: CliContext) -> None:
    """Display the email of the account you are logged in as."""
    try:
        account = kiku.client.get("/account")
    except NotLoggedIn as exc:
        raise WhoamiNotLoggedIn() from exc
    except ApiError as exc:
        if exc.status != 401:
            raise
        raise WhoamiNotLoggedIn() from exc
    kiku.printer.line(str(account["email"]))


@click.command("auth:token")
@pass_kiku
def token(kiku: CliContext) -> None:
    """Display the API token in use (KIKU_API_KEY, else the one from `kiku login`)."""
    current = kiku.token()
    if current is None:
        raise NotLoggedIn()
    _warn_if_expiring(kiku)
    kiku.printer.line(current)


def _warn_if_expiring(kiku: CliContext) -> None:
    try:
        authorization = kiku.client.get("/oauth/authorizations/~")
        expires_in = authorization["access_token"]["expires_in"]
    except (KikuCliError, KeyError, TypeError):
        return  # only a courtesy: the token is printed regardless
    if isinstance(expires_in, int) and expires_in < EXPIRY_WARNING_SECONDS:
        days = expires_in // (24 * 3600)
        kiku.printer.warn(f"Your token will expire in {days} days. Run `kiku login` for a new one.")


def register(cli: click.Group) -> None:
    add_command(cli, login, "login")
    add_command(cli, logout, "logout")
    add_command(cli, whoami, "whoami")
    add_command(cli, token)
