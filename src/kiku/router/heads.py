"""The heads the router rewrites: a client's request, checked (smuggling, Host, Expect)
and rewritten for the dyno (`build_request`, `RequestHead`), and a dyno's response headers
for the client (`response_headers`). Forwarding headers added, hop-by-hop headers dropped.

Both run once per request, so each reads the headers in one pass, deciding by one dict
lookup per header, and builds a head from as few pieces as it can.
"""

from __future__ import annotations

import os
import re
import time

from kiku.router import pages
from kiku.router.pages import RouterError

_REQUEST_ID = re.compile(rb"[A-Za-z0-9+/=-]{20,200}")
HOP = frozenset({b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"})
# Connection tokens that name no header the dyno would otherwise get.
_PLAIN_TOKENS = HOP | {b"close"}
_AFFINITY = b"heroku-session-affinity="

# What a rewrite does with a header, by lowercased name. The other side gets every header
# not listed (but Proxy-* and those the Connection header names) and the "seen" ones.
_DROPPED, _CONNECTION, _TE, _UPGRADE, _XFF, _VIA, _RID = range(7)  # read, not forwarded
_HOST, _LENGTH, _COOKIE, _EXPECT = range(7, 11)  # seen, and forwarded as they came
_REQUEST_HEADERS = {
    b"connection": _CONNECTION,
    b"keep-alive": _DROPPED,
    b"te": _DROPPED,
    b"trailer": _DROPPED,
    b"transfer-encoding": _TE,
    b"upgrade": _UPGRADE,
    b"x-forwarded-for": _XFF,
    b"via": _VIA,
    b"x-request-id": _RID,
    b"x-forwarded-proto": _DROPPED,
    b"x-forwarded-port": _DROPPED,
    b"x-request-start": _DROPPED,
    b"host": _HOST,
    b"content-length": _LENGTH,
    b"cookie": _COOKIE,
    b"expect": _EXPECT,
}
_RESPONSE_HEADERS = {
    b"connection": _CONNECTION,  # forwarded with Upgrade on a WebSocket upgrade
    b"keep-alive": _DROPPED,
    b"te": _DROPPED,
    b"trailer": _DROPPED,
    b"transfer-encoding": _TE,
    b"upgrade": _UPGRADE,
    b"x-request-id": _RID,  # seen, and forwarded
    b"content-length": _LENGTH,
}
_UPGRADE_HEADERS = frozenset({b"connection", b"upgrade"})


def is_hop(lname: bytes) -> bool:
    return lname in HOP or lname.startswith(b"proxy-")


def connection_tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def listener_headers(proto: str, port: int) -> bytes:
    """The forwarding headers that only depend on the listener, made once per connection."""
    return b"\r\nX-Forwarded-Proto: %b\r\nX-Forwarded-Port: %d" % (proto.encode(), port)


# A UUID4's variant digit (8, 9, a or b) from any random hex digit.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class RequestIds:
    """UUID4 request ids, from random bytes fetched 256 ids at a time (one system call
    instead of one per request, and no uuid.UUID object)."""

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._hex):
            self._hex, at = os.urandom(16 * 256).hex(), 0
        self._at = at + 32
        h = self._hex[at : at + 32]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


new_request_id = RequestIds()


def _affinity_cookie(value: bytes) -> bytes:
    for part in value.split(b";"):
        name, _, token = part.strip().partition(b"=")
        if name == _AFFINITY[:-1]:
            return token.strip()
    return b""


class RequestHead:
    """A parsed client request, checked and rewritten for the dyno."""

    __slots__ = (
        "affinity",
        "chunked",
        "close_after",
        "error",
        "expect_continue",
        "fwd",
        "has_body",
        "head",
        "host",
        "http10",
        "keep_alive",
        "method",
        "path",
        "request_id",
        "websocket",
    )

    def __init__(self, method: bytes, path: bytes, keep_alive: bool, http10: bool) -> None:
        self.method = method
        self.path = path
        self.keep_alive = keep_alive
        self.http10 = http10
        self.host = ""
        self.fwd = ""
        self.request_id = ""
        self.head = b""
        self.chunked = False
        self.has_body = False
        self.websocket = False
        self.expect_continue = False
        self.close_after = False
        self.error: RouterError | None = None
        self.affinity = b""  # the heroku-session-affinity cookie's value, if sent


def build_request(
    method: bytes,
    url: bytes,
    version: str,
    keep_alive: bool,
    headers: list[tuple[bytes, bytes]],
    client_ip: bytes,
    listener: bytes,
) -> RequestHead:
    """Check the request (smuggling, Host, Expect) and build the head sent to the dyno.
    `listener` is `listener_headers()` of the port the request came to."""
    req = RequestHead(method, url, keep_alive, version == "1.0")
    conn_tokens: set[bytes] = set()
    hosts: list[bytes] = []
    lengths: set[bytes] = set()
    te: bytes | None = None
    fwd: list[bytes] = []
    via: list[bytes] = []
    request_id = b""
    upgrade = b""
    lines: list[bytes] = []  # the headers the dyno gets as they came
    for name, value in headers:
        lname = name.lower()
        kind = _REQUEST_HEADERS.get(lname)
        if kind is None:
            if not lname.startswith(b"proxy-"):
                lines.append(b"%b: %b\r\n" % (name, value))
        elif kind >= _HOST:
            lines.append(b"%b: %b\r\n" % (name, value))
            if kind == _HOST:
                hosts.append(value)
            elif kind == _LENGTH:
                lengths.add(value.strip())
            elif kind == _COOKIE:
                if _AFFINITY in value:
                    req.affinity = _affinity_cookie(value) or req.affinity
            elif value.strip().lower() == b"100-continue":  # Expect
                req.expect_continue = True
            else:
                req.error = pages.H26_EXPECT
        elif kind == _CONNECTION:
            conn_tokens |= connection_tokens(value)
        elif kind == _TE:
            te = value if te is None else te + b", " + value
        elif kind == _XFF:
            fwd.append(value.strip())
        elif kind == _VIA:
            via.append(value.strip())
        elif kind == _RID:
            request_id = value.strip()
        elif kind == _UPGRADE:
            upgrade = value.strip().lower()
    if not conn_tokens <= _PLAIN_TOKENS:  # "Connection: close, X-Secret": drop X-Secret
        lines = [line for line in lines if line.partition(b":")[0].lower() not in conn_tokens]

    if len(hosts) > 1 or (not hosts and not req.http10) or len(lengths) > 1:
        req.error = pages.H26
    if te is not None and (lengths or not te.lower().rstrip().endswith(b"chunked")):
        req.error = pages.H26
    if method == b"CONNECT":
        req.error = pages.H26
    if hosts:
        host = hosts[0].decode("latin-1")
        if host.startswith("["):  # an IPv6 literal keeps its colons
            req.host = host.split("]")[0].lower() + "]"
        else:
            req.host = host.rsplit(":", 1)[0].strip().lower()
    req.chunked = te is not None
    req.has_body = req.chunked or (bool(lengths) and lengths != {b"0"})
    req.websocket = upgrade == b"websocket" and b"upgrade" in conn_tokens
    if _REQUEST_ID.fullmatch(request_id):
        req.request_id = request_id.decode()
        rid = request_id
    else:
        req.request_id = new_request_id()
        rid = req.request_id.encode()
    fwd.append(client_ip)
    fwd_value = b", ".join(f for f in fwd if f)
    req.fwd = fwd_value.decode("latin-1")
    via.append(b"1.1 kiku")

    if req.chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if req.websocket:
        lines.append(b"Connection: Upgrade\r\nUpgrade: websocket\r\n")
    req.head = b"%b %b HTTP/1.1\r\n%bX-Forwarded-For: %b%b\r\nX-Request-Start: %d\r\n" % (
        method,
        url,
        b"".join(lines),
        fwd_value,
        listener,
        time.time_ns() // 1_000_000,
    ) + b"X-Request-Id: %b\r\nVia: %b\r\n\r\n" % (rid, b", ".join(via))
    return req


def response_headers(
    headers: list[tuple[bytes, bytes]], upgraded: bool
) -> tuple[list[bytes], bool, bool, bool]:
    """A dyno's response headers as lines for the client: hop-by-hop ones dropped (but
    Connection and Upgrade of a WebSocket upgrade). Also whether it had Content-Length,
    Transfer-Encoding and X-Request-Id."""
    lines: list[bytes] = []
    tokens: set[bytes] = set()
    has_length = chunked = has_rid = False
    for name, value in headers:
        lname = name.lower()
        kind = _RESPONSE_HEADERS.get(lname)
        if kind is None:
            if not lname.startswith(b"proxy-"):
                lines.append(b"%b: %b\r\n" % (name, value))
        elif kind == _LENGTH:
            has_length = True
            lines.append(b"%b: %b\r\n" % (name, value))
        elif kind == _RID:
            has_rid = True
            lines.append(b"%b: %b\r\n" % (name, value))
        elif kind == _TE:
            chunked = True
        elif kind == _CONNECTION:
            tokens |= connection_tokens(value)
            if upgraded:
                lines.append(b"%b: %b\r\n" % (name, value))
        elif kind == _UPGRADE and upgraded:
            lines.append(b"%b: %b\r\n" % (name, value))
    if not tokens <= _PLAIN_TOKENS:  # "Connection: X-Internal": drop X-Internal
        drop = tokens - _UPGRADE_HEADERS if upgraded else tokens
        lines = [line for line in lines if line.partition(b":")[0].lower() not in drop]
    return lines, has_length, chunked, has_rid
