"""What every command is handed: settings, the API client, credentials, git, the printer.

The `kiku` group puts one `CliContext` in `ctx.obj`; commands take it with `@pass_kiku`,
or just the authenticated client with `@pass_client`. Tests build their own::

    kiku = CliContext.from_env(env, transport=httpx.MockTransport(handler), cwd=tmp_path)
    CliRunner().invoke(build_cli(), ["apps"], obj=kiku)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import click
import httpx

from kiku.cli import NotLoggedIn
from kiku.cli.client import KikuClient
from kiku.cli.credentials import NetrcCredentials, machine_for
from kiku.cli.gitremote import GitRemotes
from kiku.cli.printer import Printer

DEFAULT_API_URL = "http://127.0.0.1:5100"
_FALSE = {"", "0", "false", "no", "off"}

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class CliSettings:
    """The CLI's settings, from a mapping handed in (`os.environ` in real use)."""

    api_url: str = DEFAULT_API_URL
    api_key: str | None = None
    debug: bool = False
    debug_headers: bool = False
    netrc_path: Path = field(default_factory=lambda: Path.home() / ".netrc")
    # The whole environment, handed to git so tests can isolate HOME and gitconfig.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CliSettings:
        debug_headers = environ.get("KIKU_DEBUG_HEADERS", "").lower() not in _FALSE
        return cls(
            api_url=(environ.get("KIKU_API_URL") or DEFAULT_API_URL).rstrip("/"),
            api_key=environ.get("KIKU_API_KEY") or None,
            debug=debug_headers or environ.get("KIKU_DEBUG", "").lower() not in _FALSE,
            debug_headers=debug_headers,
            netrc_path=netrc_path(environ),
            environ=environ,
        )


def netrc_path(environ: Mapping[str, str]) -> Path:
    """`$NETRC` if set, else `$HOME/.netrc` (where Heroku's CLI keeps its token)."""
    if environ.get("NETRC"):
        return Path(environ["NETRC"])
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".netrc"


class CliContext:
    """Per-invocation state; the API client is made on first use and closed at the end."""

    def __init__(
        self,
        settings: CliSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        printer: Printer | None = None,
        cwd: Path | None = None,
        open_url: Callable[[str], object] = click.launch,
    ) -> None:
        self.settings = settings
        self.printer = printer if printer is not None else Printer()
        self.credentials = NetrcCredentials(settings.netrc_path, machine_for(settings.api_url))
        self.git = GitRemotes(cwd, settings.environ or None)
        self.open_url = open_url
        self._transport = transport
        self._client: KikuClient | None = None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        printer: Printer | None = None,
        cwd: Path | None = None,
        open_url: Callable[[str], object] = click.launch,
    ) -> CliContext:
        settings = CliSettings.from_env(environ)
        return cls(settings, transport=transport, printer=printer, cwd=cwd, open_url=open_url)

    def token(self) -> str | None:
        """KIKU_API_KEY if set, else the password of our netrc entry."""
        if self.settings.api_key:
            return self.settings.api_key
        stored = self.credentials.load()
        return stored.password if stored else None

    @property
    def client(self) -> KikuClient:
        """The client carrying the user's token; `NotLoggedIn` if there is none."""
        if self._client is None:
            token = self.token()
            if token is None:
                raise NotLoggedIn()
            self._client = self.make_client(token)
        return self._client

    def make_client(self, token: str | None) -> KikuClient:
        """A new client with `token` (or none, for logging in); the caller closes it."""
        trace = self.printer.debug if self.settings.debug else None
        return KikuClient(
            self.settings.api_url,
            token,
            transport=self._transport,
            trace=trace,
            trace_headers=self.settings.debug_headers,
            warn=self.printer.warn,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


pass_kiku = click.make_pass_decorator(CliContext)


def pass_client(f: Callable[Concatenate[KikuClient, P], R]) -> Callable[P, R]:
    """Like `pass_kiku`, but hands the command the authenticated `KikuClient`."""

    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        kiku = click.get_current_context().find_object(CliContext)
        if kiku is None:
            raise RuntimeError("pass_client used outside the kiku group")
        return f(kiku.client, *args, **kwargs)

    return wrapper


def default_context() -> CliContext:
    """The context for a real run: the process's environment and directory."""
    return CliContext.from_env(os.environ)
