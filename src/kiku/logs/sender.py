"""`Sender`: the one object between a drain and the outside world (a syslog receiver, an
HTTPS endpoint), so a `Drain` is the same loop whatever it delivers to.

    class Sender(Protocol):
        def deliver(self, lines): ...   # deliver, drop (permanent failure) or raise
        def abort(self): ...            # another thread: unblock I/O in progress
        def close(self): ...
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Protocol

from kiku.logs.lines import LogLine


class DeliveryFailed(Exception):
    """Temporary: the drain keeps the lines, backs off, and tries them again."""


PRIVATE_HINT = (
    "kiku sends logs only to public addresses; an operator can allow private ones with "
    "KIKU_DRAIN_ALLOW_PRIVATE=1"
)


def check_public(host: str, port: int) -> None:
    """Refuse a receiver on loopback, private, link-local or other non-public addresses:
    a drain must not turn kiku into a way to reach this host's or its network's services
    (the API, add-on databases). Checked when connecting, so DNS cannot sneak one in."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryFailed(f"cannot resolve {host}: {exc}") from exc
    for *_, address in infos:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global:
            raise DeliveryFailed(f"{host} is at {ip}, which is not public; {PRIVATE_HINT}")


class Sender(Protocol):
    max_lines: int  # at most this many lines per `deliver`
    target_bytes: int  # and about this many bytes of frames
    dropped: int  # lines given up on for good

    def deliver(self, lines: Sequence[LogLine]) -> None:
        """Deliver `lines`, in order. Returns when they were delivered or were given up on
        for good (an HTTPS drain's 4xx, or its retries spent); raises `DeliveryFailed`
        when the drain should try the same lines again later."""

    def abort(self) -> None:
        """Called from another thread: make a `deliver` in progress return or raise soon."""

    def close(self) -> None:
        """Release connections; called once, by the drain's own thread."""
