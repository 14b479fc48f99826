"""Validating response bodies against Heroku's published Platform API schema.

The schema shipped in `kiku/api/platform-api-schema.json` is Heroku's JSON Hyper-Schema
(draft-04, interagent extensions). Plain draft-04 validation of it is lenient: interagent's
`strictProperties` means nothing to a draft-04 validator, and nothing is `required`. So the
document is tightened before use (see `_tighten`): kiku promises the full shape of each
resource, exactly as Heroku's clients expect to read it. Used by tests/api/test_schema.py
(in-process) and tests/integration (a real server).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

import kiku.api

SCHEMA_PATH = Path(kiku.api.__file__).parent / "platform-api-schema.json"
BASE_URI = "http://api.heroku.com/schema"

# The one allowed deviation from Heroku's schema: its app URL patterns name heroku.com hosts
# (`https://git.heroku.com/NAME.git`, `https://NAME.herokuapp.com/`). A kiku serves git from
# its API host and apps under its own domain, so just these two patterns are swapped for
# kiku's equivalents; the name part of each stays Heroku's.
HEROKU_PATTERNS = {
    "git_url": r"^https://git\.heroku\.com/[a-z][a-z0-9-]{2,29}\.git$",
    "web_url": r"^https?://[a-z][a-z0-9-]{3,43}\.herokuapp\.com/$",
}
KIKU_PATTERNS = {
    "git_url": r"^https?://[^/]+/[a-z][a-z0-9-]{2,29}\.git$",
    "web_url": r"^https?://[a-z][a-z0-9-]{2,29}\.[^/]+/$",
}

# The resources kiku implements, each checked with all of its listed properties required.
RESOURCES = (
    "account",
    "oauth-authorization",
    "app",
    "collaborator",
    "rate-limit",
    "release",
    "build",
    "slug",
    "buildpack-installation",
    "formation",
    "dyno",
    "stack",
    "app-feature",
    "log-drain",
)


# -- the validator -------------------------------------------------------------------------


def _format_checker() -> FormatChecker:
    """draft-04's checkers plus strict ones for the formats the schema uses.

    jsonschema checks `uuid` only for newer drafts and `date-time`/`uri` only when optional
    packages are installed; without these, a malformed id or timestamp would pass silently.
    """
    checker = FormatChecker(formats=())
    checker.checkers.update(Draft4Validator.FORMAT_CHECKER.checkers)

    @checker.checks("uuid", raises=ValueError)
    def is_uuid(value: object) -> bool:
        # Canonical form only: lowercase, hyphenated, as Heroku sends ids.
        return not isinstance(value, str) or str(uuid.UUID(value)) == value

    rfc3339 = re.compile(
        r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
    )

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not rfc3339.match(value):
            return False
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # real dates only
        return True

    @checker.checks("email")
    def is_email(value: object) -> bool:
        return not isinstance(value, str) or bool(re.match(r"^[^@\s]+@[^@\s]+$", value))

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc) and not re.search(r"\s", value)

    return checker


FORMATS = _format_checker()


def _require_all(node: dict[str, Any]) -> None:
    if node["properties"]:  # draft-04 forbids an empty `required`
        node["required"] = sorted(node["properties"])
    node["additionalProperties"] = False


def _tighten(node: Any) -> Any:
    """Every object schema marked `strictProperties` requires all its properties, no others."""
    if isinstance(node, list):
        return [_tighten(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _tighten(value) for key, value in node.items()}
    if node.get("strictProperties") is True and isinstance(node.get("properties"), dict):
        _require_all(node)
    return node


def load_schema(*, kiku_patterns: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = _tighten(json.loads(SCHEMA_PATH.read_text()))
    for resource in document["definitions"].values():
        # A resource's top level lists the shape kiku promises in full, strict or not.
        if isinstance(resource.get("properties"), dict):
            _require_all(resource)
    app = document["definitions"]["app"]["definitions"]
    for field, heroku in HEROKU_PATTERNS.items():
        assert app[field]["pattern"] == heroku, f"Heroku's {field} pattern changed"
        if kiku_patterns:
            app[field]["pattern"] = KIKU_PATTERNS[field]
    return document


def make_validators(document: dict[str, Any]) -> dict[str, Draft4Validator]:
    Draft4Validator.check_schema(document)
    registry: Registry[Any] = Registry().with_resource(BASE_URI, DRAFT4.create_resource(document))
    return {
        name: Draft4Validator(
            {"$ref": f"{BASE_URI}#/definitions/{name}"}, registry=registry, format_checker=FORMATS
        )
        for name in RESOURCES
    }


VALIDATORS = make_validators(load_schema())


def problems(resource: str, body: Any, validators: dict[str, Draft4Validator] = VALIDATORS) -> str:
    """Every way `body` breaks the schema of `resource`, one per line ('' when it fits)."""
    errors = sorted(validators[resource].iter_errors(body), key=lambda e: list(e.absolute_path))
    return "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors
    )


def assert_valid(resource: str, body: Any) -> None:
    found = problems(resource, body)
    assert not found, f"{resource} body does not fit Heroku's schema:\n{found}\n{body!r}"


def assert_valid_list(resource: str, body: Any) -> None:
    assert isinstance(body, list), body
    assert body, "a list that should hold items is empty"
    for item in body:
        assert_valid(resource, item)
