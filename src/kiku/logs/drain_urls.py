"""Drain URLs: which ones kiku accepts, and how to show one without its secrets.

    target = parse_drain_url("syslog+tls://logs.example.com:6514")
    target.scheme, target.host, target.port      # "syslog+tls", "logs.example.com", 6514
    redact("https://user:secret@logs.example.com/in?key=abc")
    # "https://***@logs.example.com/in?***"

Drain URLs often carry credentials (Basic auth userinfo, API keys in the query), so they
are never logged or shown in an app's stream as given: only `redact()`ed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from kiku.errors import InvalidParams

SCHEMES = ("syslog", "syslog+tls", "https", "http")
DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class DrainUrl:
    url: str  # as the user gave it, credentials and all
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def is_syslog(self) -> bool:
        return self.scheme.startswith("syslog")

    @property
    def uses_tls(self) -> bool:
        return self.scheme in ("syslog+tls", "https")

    @property
    def without_userinfo(self) -> str:
        """The URL to request: credentials go in an Authorization header instead."""
        parts = urlsplit(self.url)
        return parts._replace(netloc=_hostport(parts)).geturl()

    def redacted(self) -> str:
        return redact(self.url)


def parse_drain_url(url: str) -> DrainUrl:
    """The drain URL checked, or `InvalidParams` saying what is wrong with it."""
    example = "e.g. syslog+tls://logs.example.com:6514 or https://logs.example.com/drain"
    if not url or url != url.strip() or any(c.isspace() for c in url):
        raise InvalidParams(f"A drain URL cannot be empty or contain spaces ({example}).")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidParams(f"Invalid drain URL {redact(url)}: {exc} ({example}).") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidParams(
            f"Invalid drain URL {redact(url)}: the scheme must be syslog://, syslog+tls://, "
            f"https:// or http:// ({example})."
        )
    if not parts.hostname:
        raise InvalidParams(f"Invalid drain URL {redact(url)}: it names no host ({example}).")
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    if port is None or port == 0:
        raise InvalidParams(
            f"Invalid drain URL {redact(url)}: syslog drains need a port, "
            f"as in {scheme}://{parts.hostname}:6514."
        )
    if scheme.startswith("syslog") and (parts.username or parts.password):
        raise InvalidParams(
            f"Invalid drain URL {redact(url)}: syslog drains take no user or password."
        )
    return DrainUrl(
        url=url,
        scheme=scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def redact(url: str) -> str:
    """`url` without what may be secret: userinfo and query become `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    netloc = _hostport(parts)
    if "@" in parts.netloc:
        netloc = "***@" + netloc
    query = "***" if parts.query else ""
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


def _hostport(parts: SplitResult) -> str:
    return parts.netloc.rpartition("@")[2]
