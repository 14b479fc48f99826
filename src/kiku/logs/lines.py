"""A log line, as logplex keeps it and as every consumer renders it.

Heroku's format (`logplex_utils:format/4`): `TIMESTAMP SOURCE[PROCESS]: MESSAGE`, the
timestamp RFC 3339 with microseconds and `+00:00`. Syslog framing for drains is here too,
so the one line has one rendering per wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

MAX_LINE = 10000  # bytes; longer dyno lines become several lines


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int  # per app, increasing; the SSE event id tail sessions resume from
    at: float  # unix time
    source: str  # "app" or "heroku"
    process: str  # "web.1", "router", "api", ...
    message: str
    # `at` as RFC 3339, when the logplex made it already (lines of one read share it).
    stamp: str = field(default="", compare=False)

    @property
    def timestamp(self) -> str:
        return self.stamp or rfc3339(self.at)

    def render(self) -> str:
        """`2026-11-28T23:59:59.123456+00:00 app[web.1]: message`, without a newline."""
        return f"{self.stamp or rfc3339(self.at)} {self.source}[{self.process}]: {self.message}"

    def matches(self, source: str | None, dyno: str | None) -> bool:
        """logplex's filters: source exactly; dyno `web` matches `web` and `web.*`."""
        if source and self.source != source:
            return False
        return not dyno or self.process == dyno or self.process.startswith(dyno + ".")

    def syslog(self, hostname: str, pri: int | None = None, sd: bool = True) -> bytes:
        """One RFC 5424 message, octet-counted (RFC 6587): `LEN <PRI>1 TS HOST APP PROC - - MSG`
        and a newline, counted in LEN (logplex's `to_msg` ends each message with one).

        Syslog drains name the drain token as HOSTNAME and keep the `-` structured data;
        HTTPS drains send the literal `host` and leave it out (logplex does both)."""
        if pri is None:
            pri = priority(self.source, self.process)
        structured = " -" if sd else ""
        stamp = self.stamp or rfc3339(self.at)
        body = (
            f"<{pri}>1 {stamp} {hostname} {self.source} {self.process} -{structured} "
            f"{self.message}\n"
        ).encode()
        return b"%d " % len(body) + body


def priority(source: str, process: str) -> int:
    """local7.info (190) for app lines, local3.info (158) for the router, local0 for the rest."""
    if source == "app":
        return 190
    if process == "router":
        return 158
    return 134


_cache: tuple[int, str] = (-1, "")


def rfc3339(at: float) -> str:
    """RFC 3339 with microseconds, in UTC; the date part is cached per second (hot path)."""
    global _cache
    whole, _, micros = f"{at:.6f}".partition(".")
    second = int(whole)
    cached_second, prefix = _cache  # one read: threads may race to refresh, never mix
    if second != cached_second:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _cache = (second, prefix)
    return f"{prefix}.{micros}+00:00"


def split(message: str) -> list[str]:
    """Dyno lines over 10000 bytes become 10000-byte pieces (on character boundaries)."""
    data = message.encode()
    if len(data) <= MAX_LINE:
        return [message]
    pieces = []
    while data:
        cut = min(MAX_LINE, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # never cut inside a UTF-8 sequence
        pieces.append(data[:cut].decode(errors="replace"))
        data = data[cut:]
    return pieces
