"""kiku's command line, in Heroku's grammar (`kiku apps:info -a NAME`).

Errors a command raises to stop with a message for the user. Click's own handler shows
them (`Error: MESSAGE`, then `Error ID: id` when the API gave one, on stderr) and exits
with their `exit_code`; no traceback::

    click.ClickException
     └── KikuCliError         anything the user should read; exit 1 (a subclass may
          │                   set another `exit_code`)
          ├── NotLoggedIn     no token in KIKU_API_KEY or the netrc file
          ├── ApiUnreachable  the connection to KIKU_API_URL failed   (client.py)
          └── ApiError        the API answered non-2xx: .status, .id  (client.py)
"""

from __future__ import annotations

from typing import IO, Any

import click


class KikuCliError(click.ClickException):
    """Stop the command: show `message` (and the API's error id) and exit.

    Example::

        raise KikuCliError("Not a git repository.")
    """

    def __init__(self, message: str, *, error_id: str | None = None) -> None:
        super().__init__(message)
        self.error_id = error_id

    def show(self, file: IO[Any] | None = None) -> None:
        # Imported here: the printer is the only module that knows Rich, and the
        # error tree must stay importable without it.
        from kiku.cli.printer import Printer

        Printer(err=file).error(self.format_message(), self.error_id)


class NotLoggedIn(KikuCliError):
    """There is no token to send: neither KIKU_API_KEY nor a netrc entry."""

    def __init__(self) -> None:
        super().__init__("Not logged in. Run `kiku login` first.")


__all__ = ["KikuCliError", "NotLoggedIn"]
