"""Heroku-style credentials in a netrc file: `machine HOST:PORT login EMAIL password TOKEN`.

Reading uses the stdlib parser. Writing edits the text of our one entry in place, so
other machines, comments and macros in the user's file survive byte for byte.
"""

from __future__ import annotations

import netrc
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kiku.cli import KikuCliError

DEFAULT_PORTS = {"http": 80, "https": 443}
# A netrc token: a double-quoted string (with \-escapes), a comment, or a bare word.
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|#[^\n]*|[^\s"]+')
_ENTRY_STARTS = {"machine", "default", "macdef"}


@dataclass(frozen=True)
class Credentials:
    login: str
    password: str


def machine_for(api_url: str) -> str:
    """The netrc machine name for an API URL: its host[:port], as Heroku's `apiHost`."""
    parts = urlsplit(api_url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    if port is None or port == DEFAULT_PORTS.get(parts.scheme):
        return host
    return f"{host}:{port}"


class NetrcCredentials:
    """The credentials for one machine in one netrc file.

    Example::

        store = NetrcCredentials(Path.home() / ".netrc", "127.0.0.1:5100")
        store.save("dev@example.com", "HRKU-…")
        store.load()  # Credentials(login="dev@example.com", password="HRKU-…")
    """

    def __init__(self, path: Path, machine: str) -> None:
        self.path = path
        self.machine = machine

    def load(self) -> Credentials | None:
        if not self.path.exists():
            return None
        try:
            # `hosts`, not `authenticators()`: that falls back to the file's `default`
            # entry, whose password is not a kiku token.
            entry = netrc.netrc(str(self.path)).hosts.get(self.machine)
        except (netrc.NetrcParseError, OSError) as exc:
            raise KikuCliError(f"Could not read {self.path}: {exc}") from exc
        if entry is None or not entry[2]:
            return None
        return Credentials(login=entry[0], password=entry[2])

    def save(self, login: str, password: str) -> None:
        """Write (or replace) our entry, leaving the rest of the file alone."""
        if any(c.isspace() or c == '"' for c in login + password):
            raise KikuCliError("Cannot store a login or token containing spaces or quotes.")
        entry = f"machine {self.machine}\n  login {login}\n  password {password}\n"
        text = self._read_text()
        span = _find_entry(text, self.machine)
        if span is None:
            separator = "" if not text or text.endswith("\n") else "\n"
            text = text + separator + entry
        else:
            text = text[: span[0]] + entry + text[span[1] :]
        self._write_text(text)

    def remove(self) -> bool:
        """Drop our entry; True if there was one."""
        text = self._read_text()
        span = _find_entry(text, self.machine)
        if span is None:
            return False
        self._write_text(text[: span[0]] + text[span[1] :])
        return True

    def _read_text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def _write_text(self, text: str) -> None:
        # Write a 0600 sibling and rename it over the file: a crash never leaves half a
        # netrc, and the token is never readable by others, not even for a moment.
        target = self.path.resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".netrc-", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _find_entry(text: str, machine: str) -> tuple[int, int] | None:
    """The span of `machine NAME …` in `text`: from `machine` to the end of its last line."""
    tokens = list(_tokens(text))
    for index, (word, start, _) in enumerate(tokens):
        if (
            word != "machine"
            or index + 1 >= len(tokens)
            or _unquote(tokens[index + 1][0]) != machine
        ):
            continue
        end = tokens[index + 1][2]
        for word_after, _, token_end in tokens[index + 2 :]:
            if word_after in _ENTRY_STARTS:
                break
            end = token_end
        newline = text.find("\n", end)
        return start, len(text) if newline == -1 else newline + 1
    return None


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for every netrc token, skipping comments and macro bodies."""
    found: list[tuple[str, int, int]] = []
    position = 0
    while (match := _TOKEN.search(text, position)) is not None:
        word, position = match.group(), match.end()
        if word.startswith("#"):
            continue
        found.append((word, match.start(), match.end()))
        if word == "macdef":
            # A macro runs to the first empty line; its words are not netrc tokens.
            body_end = text.find("\n\n", position)
            position = len(text) if body_end == -1 else body_end + 2
    return found


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] == '"':
        return re.sub(r"\\(.)", r"\1", word[1:-1])
    return word
