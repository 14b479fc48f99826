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
_NO_TOKENS: frozenset[bytes] = frozenset()
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
# Method, path, the client's headers, X-Forwarded-For, -Proto and -Port, X-Request-Start,
# X-Request-Id and the Via that came.
_REQUEST_HEAD = (
    b"%b %b HTTP/1.1\r\n%bX-Forwarded-For: %b%b\r\nX-Request-Start: %d\r\n%bVia: %b1.1 kiku\r\n\r\n"
)


def is_hop(lname: bytes) -> bool:
    return lname in HOP or lname.startswith(b"proxy-")


def connection_tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def listener_headers(proto: str, port: int) -> bytes:
    """The forwarding headers that only depend on the listener, made once per connection."""
    return b"\r\nX-Forwarded-Proto: %b\r\nX-Forwarded-Port: %d" % (proto.encode(), port)


# Random bytes into UUID4s: the version nibble 4 and the variant bits 10.
_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


class RequestIds:
    """UUID4 request ids, made 256 at a time from one read of random bytes (not a
    system call and a uuid.UUID object per request)."""

    def __init__(self, batch: int = 256) -> None:
        self.batch = batch
        self._ids: list[str] = []

    def __call__(self) -> str:
        if not self._ids:
            self._ids = self._make(self.batch)
        return self._ids.pop()

    @staticmethod
    def _make(count: int) -> list[str]:
        raw = bytearray(os.urandom(16 * count))
        raw[6::16] = raw[6::16].translate(_VERSION)
        raw[8::16] = raw[8::16].translate(_VARIANT)
        h = raw.hex()
        return [
            f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
            f"{h[i + 20 : i + 32]}"
            for i in range(0, len(h), 32)
        ]


new_request_id = RequestIds()


def _affinity_cookie(value: bytes) -> bytes:
    for part in value.split(b";"):
        name, _, token = part.strip().partition(b"=")
        if name == _AFFINITY[:-1]:
            return token.strip()
    return b""


class RequestHead:
    """A parsed client request, checked and rewritten for the dyno."""

    # What most requests keep, as class attributes: a request sets only what differs.
    host = ""
    fwd = ""
    request_id = ""
    rid_line = b""  # the X-Request-Id header line, for the dyno and for the response
    head = b""
    chunked = False
    has_body = False
    websocket = False
    expect_continue = False
    close_after = False
    error: RouterError | None = None
    affinity = b""  # the heroku-session-affinity cookie's value, if sent

    def __init__(self, method: bytes, path: bytes, keep_alive: bool, http10: bool) -> None:
        self.method = method
        self.path = path
        self.keep_alive = keep_alive
        self.http10 = http10


def build_request(
    method: bytes,
    url: bytes,
    version: str,
    keep_alive: bool,
    headers: list[tuple[bytes, bytes]],
    client_ip: bytes,
    listener: bytes,
    drop: frozenset[bytes] = frozenset(),
) -> RequestHead:
    """Check the request (smuggling, Host, Expect) and build the head sent to the dyno.
    `listener` is `listener_headers()` of the port the request came to; `drop` the
    headers its Connection header named."""
    req = RequestHead(method, url, keep_alive, version == "1.0")
    conn_tokens = _NO_TOKENS
    host: bytes | None = None
    length: bytes | None = None
    twice = False  # two Hosts, or two different Content-Lengths
    te: bytes | None = None
    fwd: list[bytes] = []
    via = b""
    request_id = b""
    upgrade = b""
    pieces: list[bytes] = []  # the headers the dyno gets as they came
    for name, value in headers:
        lname = name.lower()
        kind = _REQUEST_HEADERS.get(lname)
        if kind is None:
            forward = not lname.startswith(b"proxy-")
        elif kind >= _HOST:
            forward = True
            if kind == _HOST:
                if host is None:
                    host = value
                else:
                    twice = True
            elif kind == _LENGTH:
                if length is None:
                    length = value.strip()
                elif length != value.strip():
                    twice = True
            elif kind == _COOKIE:
                if _AFFINITY in value:
                    req.affinity = _affinity_cookie(value) or req.affinity
            elif value.strip().lower() == b"100-continue":  # Expect
                req.expect_continue = True
            else:
                req.error = pages.H26_EXPECT
        else:
            forward = False
            if kind == _CONNECTION:
                conn_tokens = conn_tokens | connection_tokens(value)
            elif kind == _TE:
                te = value if te is None else te + b", " + value
            elif kind == _XFF:
                fwd.append(value.strip())
            elif kind == _VIA:
                via += value.strip() + b", "
            elif kind == _RID:
                request_id = value.strip()
            elif kind == _UPGRADE:
                upgrade = value.strip().lower()
        if forward and lname not in drop:
            pieces += (name, b": ", value, b"\r\n")
    if not conn_tokens <= _PLAIN_TOKENS and not drop:
        # "Connection: close, X-Secret": X-Secret was for this hop only. Rare: read again.
        drop = frozenset(conn_tokens)
        return build_request(method, url, version, keep_alive, headers, client_ip, listener, drop)

    if twice or (host is None and not req.http10):
        req.error = pages.H26
    if te is not None and (length is not None or not te.lower().rstrip().endswith(b"chunked")):
        req.error = pages.H26
    if method == b"CONNECT":
        req.error = pages.H26
    if host is not None:
        req.host = _host_name(host)
    req.chunked = te is not None
    req.has_body = req.chunked or (length is not None and length != b"0")
    req.websocket = upgrade == b"websocket" and b"upgrade" in conn_tokens
    if request_id and _REQUEST_ID.fullmatch(request_id):
        req.request_id = request_id.decode()
        rid = request_id
    else:
        req.request_id = new_request_id()
        rid = req.request_id.encode()
    req.rid_line = b"X-Request-Id: %b\r\n" % rid
    if fwd:
        fwd.append(client_ip)
        fwd_value = b", ".join(f for f in fwd if f)
    else:
        fwd_value = client_ip
    req.fwd = fwd_value.decode("latin-1")

    if req.chunked:
        pieces.append(b"Transfer-Encoding: chunked\r\n")
    if req.websocket:
        pieces.append(b"Connection: Upgrade\r\nUpgrade: websocket\r\n")
    req.head = _REQUEST_HEAD % (
        method,
        url,
        b"".join(pieces),
        fwd_value,
        listener,
        time.time_ns() // 1_000_000,
        req.rid_line,
        via,
    )
    return req


def _host_name(host: bytes) -> str:
    """The Host header's name, lowercased, without the port."""
    name = _HOST_NAMES.get(host)
    if name is None:
        text = host.decode("latin-1")
        if text.startswith("["):  # an IPv6 literal keeps its colons
            name = text.split("]")[0].lower() + "]"
        else:
            name = text.rsplit(":", 1)[0].strip().lower()
        if len(_HOST_NAMES) >= 4096:  # whatever clients send, the cache stays small
            _HOST_NAMES.clear()
        _HOST_NAMES[host] = name
    return name


_HOST_NAMES: dict[bytes, str] = {}


def response_headers(
    headers: list[tuple[bytes, bytes]], upgraded: bool, drop: frozenset[bytes] = frozenset()
) -> tuple[list[bytes], bool, bool, bool]:
    """A dyno's response headers as pieces of lines for the client: hop-by-hop ones
    dropped (but Connection and Upgrade of a WebSocket upgrade), and those in `drop`.
    Also whether it had Content-Length, Transfer-Encoding and X-Request-Id."""
    pieces: list[bytes] = []
    tokens = _NO_TOKENS
    has_length = chunked = has_rid = False
    for name, value in headers:
        lname = name.lower()
        kind = _RESPONSE_HEADERS.get(lname)
        if kind is None:
            forward = not lname.startswith(b"proxy-")
        elif kind == _LENGTH:
            has_length = forward = True
        elif kind == _RID:
            has_rid = forward = True
        elif kind == _TE:
            chunked, forward = True, False
        elif kind == _CONNECTION:
            if value.lower() not in _PLAIN_TOKENS:  # not just "keep-alive", "close"...
                tokens = tokens | connection_tokens(value)
            forward = upgraded
        else:
            forward = upgraded and kind == _UPGRADE
        if forward and lname not in drop:
            pieces += (name, b": ", value, b"\r\n")
    if not tokens <= _PLAIN_TOKENS and not drop:
        # "Connection: X-Internal": X-Internal was for this hop only. Rare: read again.
        drop = frozenset(tokens - _UPGRADE_HEADERS if upgraded else tokens)
        return response_headers(headers, upgraded, drop)
    return pieces, has_length, chunked, has_rid
