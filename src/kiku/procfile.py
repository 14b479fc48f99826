"""Procfile parsing: `type: command` lines, as Heroku reads them."""

from __future__ import annotations

import re

from kiku.errors import KikuError

LINE = re.compile(r"^([A-Za-z0-9_-]{1,128})\s*:\s*(.+)$")


class ProcfileError(KikuError):
    """A malformed Procfile: the build fails and says which line."""


def parse(text: str) -> dict[str, str]:
    """Process types in file order; blank lines and `#` comments are skipped."""
    types: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            raise ProcfileError(f"Procfile line {number} is not `type: command`: {raw.strip()!r}")
        name, command = match.group(1), match.group(2).strip()
        if name in types:
            raise ProcfileError(f"Procfile line {number} declares {name!r} a second time.")
        types[name] = command
    return types
