"""Custom domains: which hostnames an app may claim (`kiku domains:add`, HEROKU_BEHAVIOUR §9.3).

A hostname is a DNS name of two or more labels, each 1-63 letters, digits and dashes (not at
either end), 253 characters at most, maybe starting with `*.` (a wildcard, which serves
every name one label deeper). Names under the platform's own domain are the apps' default
hostnames and cannot be claimed; a hostname belongs to one app only.
"""

from __future__ import annotations

import re

from kiku.errors import InvalidParams

MAX_PER_APP = 1000  # Heroku's limit of custom domains per app
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.ASCII)
RULE = (
    "Hostname must be a domain name like www.example.com or *.example.com: two or more "
    "dot-separated labels of letters, digits and dashes, 253 characters at most."
)


def checked_hostname(text: str, platform_domain: str) -> str:
    """`text` as a hostname kiku stores (lowercase, no trailing dot), or InvalidParams."""
    host = text.strip().lower().removesuffix(".")
    if "://" in host or "/" in host or ":" in host:
        raise InvalidParams(
            f"{text} is not a hostname: give the name alone, without scheme, port or path "
            "(www.example.com)."
        )
    labels = host.split(".")
    names = labels[1:] if labels[0] == "*" else labels
    if len(host) > 253 or len(names) < 2 or not all(_LABEL.match(label) for label in names):
        raise InvalidParams(f"{text} is not a valid hostname. {RULE}")
    if names[-1].isdigit():
        raise InvalidParams(f"{text} is an IP address; a custom domain is a DNS name. {RULE}")
    domain = platform_domain.lower()
    if host == domain or host.endswith("." + domain):
        raise InvalidParams(
            f"{host} is under {domain}, the platform's own domain: apps get "
            f"APP.{domain} without adding it."
        )
    return host


def wildcard_of(host: str) -> str | None:
    """The wildcard name that would serve `host` (`*.example.com` for `www.example.com`)."""
    _, dot, rest = host.partition(".")
    return f"*.{rest}" if dot and "." in rest else None
