"""Config var rules (HEROKU_BEHAVIOUR §7.1) and the release descriptions changes get."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kiku.errors import InvalidParams

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# All keys plus values of one app, as Heroku's limit.
MAX_BYTES = 32 * 1024
KEY_RULE = (
    "Config var keys must start with a letter or underscore and contain only letters, "
    "digits and underscores; keys starting with HEROKU_ or __ are reserved."
)


def check_key(key: str) -> None:
    if not KEY.match(key) or key.startswith(("HEROKU_", "__")):
        raise InvalidParams(f"Invalid config var key {key!r}. {KEY_RULE}")


def apply_changes(
    current: Mapping[str, str], changes: Mapping[str, object]
) -> tuple[dict[str, str], str | None]:
    """The config after `changes` (None deletes) and the release description, if any changed."""
    updated = dict(current)
    added: list[str] = []
    removed: list[str] = []
    for key, value in changes.items():
        check_key(key)
        if value is None:
            if key in updated:
                del updated[key]
                removed.append(key)
            continue
        if not isinstance(value, str | int | float | bool):
            raise InvalidParams(f"Config var {key} must be a string, not {type(value).__name__}.")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if updated.get(key) != text:
            updated[key] = text
            added.append(key)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in updated.items())
    if size > MAX_BYTES:
        raise InvalidParams(
            f"Config vars would take {size} bytes; an app's keys and values may take at most "
            f"{MAX_BYTES} bytes (32 kB). Move large values to a file or an add-on."
        )
    return updated, describe(added, removed)


def describe(added: list[str], removed: list[str]) -> str | None:
    """As Heroku writes it: `Set FOO, BAR config vars`, `Remove FOO config vars`."""
    parts = []
    if added:
        parts.append(f"Set {', '.join(added)}")
    if removed:
        parts.append(f"{'remove' if added else 'Remove'} {', '.join(removed)}")
    return " and ".join(parts) + " config vars" if parts else None
