"""Stress: seeded malformed traffic on both sides of a real router.

Why: the router, and its compiled lane (_lane.c) above all, parses bytes from clients and
from dynos that nobody vouches for. These tests throw a few hundred deterministic
(seeded) conversations at it -- random bytes, mutated, split, oversized and pipelined
requests, clients that leave mid-request or mid-response, and a dyno answering with
broken, truncated, padded, slow or missing responses -- and check what must hold
whatever the bytes: each client gets well-formed responses or a closed connection, never
a hang; the router still serves a plain request afterwards; it holds no connection once
the clients are gone; every answered request has its log line. conftest.py runs each
test with the lane and in Python only. A failure names the case and its bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import re
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field

from router.routerkit import FAST, Dyno, Handler, Seen, Stack, echo, route, run, stack, teardown

SEED = 0x6B696B75
HOST = "app.localhost"
# Keep-alive connections close after 1 s idle, so that every conversation ends with the
# router closing it (or answering) well within SETTLE. The other windows leave room for
# a busy event loop (everything here shares one): the client test times no dyno out,
# and the dyno test's stalls (STALL) outlast its windows by far.
CLIENTS = dataclasses.replace(FAST, first_byte_timeout=2.0, idle_timeout=1.0, keepalive_timeout=1.0)
DYNOS = dataclasses.replace(FAST, first_byte_timeout=1.0, idle_timeout=1.0, keepalive_timeout=1.0)
STALL = 1.4  # a dyno's pause: past DYNOS' first-byte and idle timeouts (H12, H15)
SETTLE = 4.0  # seconds a connection may stay open, silent, after the client's last byte
CONCURRENCY = 96  # client connections open at once
BIG = 512 * 1024  # /big's body: more than the lane buffers for a slow client


# --- reading what the router sends, strictly ----------------------------------------------

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) [\t\x20-\x7e\x80-\xff]*")
FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*)")
CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,15})(;[\t\x20-\x7e\x80-\xff]*)?")
MAX_HEAD = 256 * 1024
REQUEST_ID = re.compile(r"request_id=(\S+)")
PLAN_PATH = re.compile(r'path="/b/(\d+)"')


class Malformed(Exception):
    """What the router sent is not HTTP/1.1."""


@dataclass
class Reply:
    """One response as the client got it; `complete` is False when the connection ended
    inside it."""

    status: int
    headers: dict[bytes, list[bytes]]
    body: bytes
    complete: bool

    def header(self, name: bytes) -> bytes | None:
        values = self.headers.get(name)
        return values[0] if values else None


def parse_reply(
    data: bytes, at: int = 0, *, head_only: bool = False, eof: bool = False
) -> tuple[Reply, int] | None:
    """The response starting at `at` (1xx interim ones checked and skipped) and where it
    ends; None if more bytes are needed. At `eof`, a response cut short comes back with
    complete=False. Raises Malformed for anything that is not a well-formed response."""
    while True:
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            if len(data) - at > MAX_HEAD:
                raise Malformed("a head without end")
            return (Reply(0, {}, b"", False), len(data)) if eof else None
        lines = data[at:end].split(b"\r\n")
        status_line = STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            raise Malformed(f"status line {lines[0][:200]!r}")
        status = int(status_line[1])
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            field_line = FIELD.fullmatch(line)
            if field_line is None:
                raise Malformed(f"header line {line[:200]!r}")
            headers.setdefault(field_line[1].lower(), []).append(field_line[2].rstrip(b" \t"))
        at = end + 4
        if not (100 <= status < 200 and status != 101):
            break
    te, cl = headers.get(b"transfer-encoding"), headers.get(b"content-length")
    if te and cl:
        raise Malformed("both Content-Length and Transfer-Encoding")
    if head_only or status in (101, 204, 304):
        return Reply(status, headers, b"", True), at

    def cut(body: bytes) -> tuple[Reply, int] | None:
        return (Reply(status, headers, body, False), len(data)) if eof else None

    if te:
        if te != [b"chunked"]:
            raise Malformed(f"Transfer-Encoding {te!r}")
        body = bytearray()
        while True:
            nl = data.find(b"\r\n", at)
            if nl < 0:
                return cut(bytes(body))
            size_line = CHUNK_SIZE.fullmatch(data[at:nl])
            if size_line is None:
                raise Malformed(f"chunk size {data[at:nl][:100]!r}")
            size = int(size_line[1], 16)
            if size == 0:
                at = nl + 2
                while True:  # trailers, then the empty line
                    nl = data.find(b"\r\n", at)
                    if nl < 0:
                        return cut(bytes(body))
                    line, at = data[at:nl], nl + 2
                    if not line:
                        return Reply(status, headers, bytes(body), True), at
                    if FIELD.fullmatch(line) is None:
                        raise Malformed(f"trailer {line[:200]!r}")
            if len(data) < nl + 2 + size + 2:
                return cut(bytes(body + data[nl + 2 : nl + 2 + size]))
            body += data[nl + 2 : nl + 2 + size]
            if data[nl + 2 + size : nl + 4 + size] != b"\r\n":
                raise Malformed("chunk data without CRLF")
            at = nl + 4 + size
    if cl:
        if len(cl) != 1 or not cl[0].isdigit():
            raise Malformed(f"Content-Length {cl!r}")
        n = int(cl[0])
        if len(data) - at < n:
            return cut(data[at:])
        return Reply(status, headers, data[at : at + n], True), at + n
    if not eof:
        return None
    return Reply(status, headers, data[at:], True), len(data)


def parse_all(data: bytes) -> list[Reply]:
    """Everything one connection got before the router closed it: responses, one after
    the other, nothing after one that said `Connection: close`."""
    replies: list[Reply] = []
    at = 0
    while at < len(data):
        if replies and replies[-1].header(b"connection") == b"close":
            raise Malformed(f"{len(data) - at} bytes after a Connection: close response")
        parsed = parse_reply(data, at, eof=True)
        assert parsed is not None
        reply, at = parsed
        replies.append(reply)
    return replies


def open_connections(s: Stack) -> int:
    """Client connections the router holds: the lane's and Python's."""
    lane = s.router.lane
    return len(s.router.connections) + (lane.active() if lane is not None else 0)


async def settle(s: Stack) -> None:
    """Wait until the router has let go of every client connection (all have closed)."""
    for _ in range(300):
        if open_connections(s) == 0:
            return
        await asyncio.sleep(0.01)
    lane = s.router.lane
    raise AssertionError(
        f"the router still holds connections: python={len(s.router.connections)} "
        f"lane={lane.active() if lane is not None else '-'}"
    )


async def still_serves(s: Stack) -> None:
    """A plain request, after everything: answered by the dyno, and by the lane itself
    when it runs (no connection handed to Python)."""
    c = await s.client()
    try:
        r = await asyncio.wait_for(c.get("/after"), 5)
        assert r.status == 200 and r.header("X-Dyno") == "/after", (r.status, r.body[:200])
        if s.router.lane is not None:
            assert not s.router.connections, "the lane handed a plain request to Python"
    finally:
        c.close()


async def logged(s: Stack, replies: list[Reply]) -> None:
    """Each complete response carrying a request id has its log line, and there are at
    least as many lines as complete responses (allowing the last lines a moment)."""
    complete = [r for r in replies if r.complete]
    ids = Counter(rid.decode("latin-1") for r in complete if (rid := r.header(b"x-request-id")))
    missing: Counter[str] = Counter()
    for _ in range(200):
        seen = Counter(m[1] for line in s.lines if (m := REQUEST_ID.search(line)))
        missing = ids - seen
        if not missing and len(s.lines) >= len(complete):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(
        f"{sum(missing.values())} answered requests not logged ({missing}); "
        f"{len(s.lines)} lines for {len(complete)} responses"
    )


def rst(sock: socket.socket) -> None:
    """Close with a reset, as a client that crashed does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


class StressDyno(Dyno):
    """A routerkit Dyno that shrugs off requests its little parser cannot read (the
    router forwards odd but legal ones), and whose stop() ends its handlers too (some
    sleep or hold a connection on purpose)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(handler=handler)
        self.tasks: set[asyncio.Task[None]] = set()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await super()._conn(reader, writer)
        except (Exception, asyncio.CancelledError):  # ended by stop(): not an error
            writer.close()
        finally:
            self.tasks.discard(task)

    async def stop(self) -> None:
        await super().stop()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# --- a) clients -------------------------------------------------------------------------


def req(
    target: str, *headers: str, method: str = "GET", host: str = HOST, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def post(target: str, body: bytes, *headers: str) -> bytes:
    return req(target, f"Content-Length: {len(body)}", *headers, method="POST", body=body)


@dataclass
class Case:
    """One client connection: `writes` sent `pause` s apart, then read until the router
    closes; `cut` aborts (reset) once that many bytes came, `leave` after the writes
    (reset when "rst", else a plain close). `expect`: paths the first responses must
    answer, 200, in order (with `body` echoed for the first, if set)."""

    name: str
    writes: list[bytes]
    pause: float = 0.0
    cut: int = 0
    leave: str = ""
    expect: list[str] = field(default_factory=list)
    body: bytes | None = None


@dataclass
class Got:
    """What a client connection received, and how it ended."""

    data: bytes
    reset: bool = False  # by the router, or by us (`cut`)
    hung: bool = False


TEMPLATES = [
    req("/t/plain"),
    req("/t/headers", "User-Agent: stress/1", "Accept: */*", "X-Forwarded-For: 10.0.0.1"),
    post("/t/post", b"a=1&b=2"),
    req("/t/ten").replace(b"HTTP/1.1", b"HTTP/1.0"),
    req("/t/close", "Connection: close"),
    req("/t/query?x=1&y=%20&z=\xe9"),
    req("/t/chunked", "Transfer-Encoding: chunked", method="POST", body=b"3\r\nabc\r\n0\r\n\r\n"),
    req("/t/nowhere", host="nowhere.localhost"),
    req("/t/port", host="APP.localhost:80"),
    req("*", method="OPTIONS"),
    req("http://app.localhost/t/absolute"),
    post("/t/expect", b"hello", "Expect: 100-continue"),
    req("/t/upgrade", "Connection: Upgrade", "Upgrade: websocket"),
]

# Requests no router may take as they are.
BAD = [
    b"GET / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1, 2\r\n\r\nab",
    b"GET / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: app.localhost\r\nX-A: a\x00b\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: app.localhost\r\n\r\n",
    b"G\x00T / HTTP/1.1\r\nHost: app.localhost\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: app.localhost\r\nX-A : b\r\n\r\n",
    b"GET / HTTP/9.1\r\nHost: app.localhost\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
]


def mutate(rng: random.Random, t: bytes) -> tuple[str, bytes]:
    """`t` broken one way, chosen by `rng`: (how, the bytes)."""
    kind = rng.choice(
        ["flip", "truncate", "duplicate", "delete", "bare-lf", "nul", "cr", "random", "splice"]
    )
    b = bytearray(t)
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == "truncate":
        del b[rng.randint(1, len(b) - 1) :]
    elif kind == "duplicate":
        i = rng.randrange(len(b))
        j = rng.randint(i + 1, len(b))
        b[rng.randrange(len(b)) : 0] = b[i:j]
    elif kind == "delete":
        i = rng.randrange(len(b))
        del b[i : rng.randint(i + 1, min(len(b), i + 8))]
    elif kind == "bare-lf":
        every = rng.random() < 0.5
        b = bytearray(
            re.sub(rb"\r\n", lambda _: b"\n" if every or rng.random() < 0.5 else b"\r\n", t)
        )
    elif kind == "nul":
        b[rng.randrange(len(b)) : 0] = b"\x00"
    elif kind == "cr":
        b[rng.randrange(len(b)) : 0] = b"\r"
    elif kind == "random":
        b = bytearray(rng.randbytes(rng.randint(1, 300)))
    else:  # random bytes somewhere inside
        b[rng.randrange(len(b)) : 0] = rng.randbytes(rng.randint(1, 40))
    return kind, bytes(b)


def oversized(rng: random.Random, i: int) -> tuple[str, bytes]:
    """Huge lines and many headers, around the lane's and Python's limits."""
    kind = rng.choice(["header", "path", "headers", "name", "host"])
    n = rng.choice([4000, 4097, 8200, 16300, 17000, 70000])
    if kind == "header":
        return f"huge-header-{n}", req(f"/o/{i}", "X-Big: " + "a" * n)
    if kind == "path":
        return f"huge-path-{n}", req(f"/o/{i}/" + "p" * n)
    if kind == "name":
        return f"huge-name-{n}", req(f"/o/{i}", "X" * min(n, 2000) + ": v")
    if kind == "host":
        return f"huge-host-{n}", req(f"/o/{i}", host="h" * min(n, 300) + ".localhost")
    count = rng.choice([127, 128, 129, 300, 1001])
    return f"headers-{count}", req(f"/o/{i}", *(f"X-H{k}: {k}" for k in range(count)))


def client_cases() -> list[Case]:
    """Every client case, the same each run."""
    rng = random.Random(SEED)
    cases: list[Case] = []
    # A valid request split in two at every byte boundary, and one byte per write.
    whole = req("/split", "Connection: close")
    for k in range(1, len(whole)):
        cases.append(Case(f"split-get@{k}", [whole[:k], whole[k:]], 0.01, expect=["/split"]))
    upload = post("/split-post", b"0123456789" * 3, "X-Pad: yes")
    for k in range(1, len(upload)):
        cases.append(
            Case(
                f"split-post@{k}",
                [upload[:k], upload[k:]],
                0.01,
                expect=["/split-post"],
                body=b"0123456789" * 3,
            )
        )
    two = req("/byte/1") + req("/byte/2")
    cases.append(
        Case("byte-by-byte", [bytes([x]) for x in two], 0.002, expect=["/byte/1", "/byte/2"])
    )
    # Mutated templates, sometimes after a good request on the same connection.
    for i in range(220):
        kind, bad = mutate(rng, rng.choice(TEMPLATES))
        if rng.random() < 0.3:
            good = req(f"/m/{i}/first")
            cases.append(Case(f"mutated-{i}-{kind}", [good + bad], expect=[f"/m/{i}/first"]))
        else:
            cases.append(Case(f"mutated-{i}-{kind}", [bad]))
    for i, bad in enumerate(BAD):
        cases.append(Case(f"bad-{i}", [bad]))
    # Empty lines where a request line may come: ignored, but the connection still idles
    # out (a bare CRLF may follow a response, or open a connection).
    cases.append(Case("blank-line", [b"\r\n"]))
    cases.append(Case("blank-lines", [b"\r\n\r\n\r\n"]))
    cases.append(Case("blank-bare-lf", [b"\n"]))
    cases.append(Case("blank-after", [req("/blank"), b"\r\n"], 0.2, expect=["/blank"]))
    # Floods: more pipelined bytes than the lane holds while it answers.
    gets = [f"/flood/{k}" for k in range(300)]
    cases.append(Case("flood-gets", [b"".join(req(g) for g in gets)], expect=gets))
    posts = [f"/flood-post/{k}" for k in range(60)]
    flood = b"".join(post(p, b"x" * 2000) for p in posts)
    cases.append(Case("flood-posts", [flood], expect=posts, body=b"x" * 2000))
    for i in range(40):
        name, data = oversized(rng, i)
        cases.append(Case(f"{name}-{i}", [data]))
    # Pipelined bursts: good requests, then a bad one, then more; the goods before the
    # bad one must be answered in order. Written whole or in random pieces.
    for i in range(40):
        goods = [req(f"/p/{i}/{k}") for k in range(rng.randint(0, 20))]
        bad = rng.choice(BAD) if rng.random() < 0.5 else mutate(rng, rng.choice(TEMPLATES))[1]
        tail = [req(f"/p/{i}/after")] * rng.randint(0, 3)
        data = b"".join([*goods, bad, *tail])
        writes = [data]
        if rng.random() < 0.5:
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
            writes = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        expect = [f"/p/{i}/{k}" for k in range(len(goods))]
        cases.append(Case(f"pipeline-{i}", writes, 0.005, expect=expect))
    # Clients that leave: mid-request, waiting for the response, mid-response.
    for i in range(30):
        t = rng.choice(TEMPLATES)
        cut = t[: rng.randint(1, len(t) - 1)]
        cases.append(Case(f"leave-mid-request-{i}", [cut], leave=rng.choice(["rst", "close"])))
    for i in range(10):
        cases.append(
            Case(f"leave-waiting-{i}", [req(f"/late/{i}")], leave=rng.choice(["rst", "close"]))
        )
    for i in range(15):
        cases.append(Case(f"leave-mid-slow-{i}", [req(f"/slow/{i}")], cut=rng.randint(1, 600)))
    for i in range(8):
        cases.append(Case(f"leave-mid-big-{i}", [req(f"/big/{i}")], cut=rng.randint(1, BIG)))
    return cases


async def client_dyno(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
    """Echo, except /slow (1000 bytes over 0.4 s), /late (answers after 0.2 s), /big."""
    if seen.path.startswith("/slow"):
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(20):
            w.write(b"s" * 50)
            await w.drain()
            await asyncio.sleep(0.02)
        return True
    if seen.path.startswith("/big"):
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (BIG, b"b" * BIG))
        return True
    if seen.path.startswith("/late"):
        await asyncio.sleep(0.2)
    return await echo(seen, r, w)


async def converse(port: int, case: Case) -> Got:
    """Play `case` on a new connection; what came back, until the router closed."""
    loop = asyncio.get_running_loop()
    sock = await connect(port)
    data = bytearray()
    reset = False

    async def read() -> None:
        nonlocal reset
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionError:
                reset = True
                return
            if not chunk:
                return
            data.extend(chunk)
            if case.cut and len(data) >= case.cut:
                reset = True
                return

    reader = asyncio.ensure_future(read())
    try:
        for k, w in enumerate(case.writes):
            if k and case.pause:
                await asyncio.sleep(case.pause)
            try:
                await loop.sock_sendall(sock, w)
            except OSError:  # the router closed first (a reset): what came is read
                break
        if case.leave:
            reader.cancel()
            if case.leave == "rst":
                rst(sock)
            else:
                sock.close()
            return Got(bytes(data), reset=True)
        try:
            await asyncio.wait_for(asyncio.shield(reader), SETTLE)
        except TimeoutError:
            return Got(bytes(data), reset, hung=True)
        return Got(bytes(data), reset)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if case.cut:
            rst(sock)
        else:
            sock.close()


def judge(case: Case, got: Got) -> tuple[list[Reply], str]:
    """The responses in `got`, and what is wrong with them ("" if nothing)."""
    if got.hung:
        return [], f"neither answered nor closed within {SETTLE}s; got {got.data[:300]!r}"
    if case.leave:
        return [], ""
    try:
        replies = parse_all(got.data)
    except Malformed as exc:
        return [], f"malformed response ({exc}); got {got.data[:600]!r}"
    if replies and not replies[-1].complete and not got.reset:
        return replies, f"the router closed inside a response; got {got.data[-300:]!r}"
    for k, path in enumerate(case.expect):
        if k >= len(replies) or not replies[k].complete:
            return replies, f"no complete response for {path}; got {got.data[:600]!r}"
        r = replies[k]
        if r.status != 200 or r.header(b"x-dyno") != path.encode():
            return replies, f"{path} answered {r.status} {r.header(b'x-dyno')!r}: {r.body[:300]!r}"
        if k == 0 and case.body is not None and json.loads(r.body)["body"] != case.body.decode():
            return replies, f"{path}: the dyno got {json.loads(r.body)['body']!r}"
    return replies, ""


@run
async def test_malformed_clients_get_answers_or_closes() -> None:
    """Hundreds of broken, split, oversized, pipelined and abandoned requests: each
    connection gets well-formed responses or is closed, in time; then none is held, the
    log has each answered request, and a plain request still works."""
    d = await StressDyno(handler=client_dyno).start()
    s = await stack(CLIENTS, {HOST: route("app", d.backend)})
    try:
        gate = asyncio.Semaphore(CONCURRENCY)
        cases = client_cases()

        async def one(case: Case) -> tuple[list[Reply], str]:
            async with gate:
                return judge(case, await converse(s.port, case))

        results = await asyncio.gather(*(one(case) for case in cases))
        failures = [
            f"{case.name}: {problem}\n    sent {b''.join(case.writes)[:400]!r}"
            for case, (_, problem) in zip(cases, results, strict=True)
            if problem
        ]
        assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(
            failures[:40]
        )
        await settle(s)
        await logged(s, [r for replies, _ in results for r in replies])
        await still_serves(s)
        await settle(s)
    finally:
        await teardown(s, d)


# --- b) a dyno ------------------------------------------------------------------------------

Step = bytes | float  # bytes the dyno writes, or seconds it waits


@dataclass
class Plan:
    """A dyno's answer to /b/<n>: its steps, then "keep" the connection, "close" it or
    "hold" it (read, answer nothing) a while. `expect`: the status and body the client
    must get, for the answers that are valid HTTP. `head`: the client asks with HEAD;
    `leave`: the client resets once the first byte of the answer came."""

    name: str
    steps: list[Step]
    then: str = "close"
    expect: tuple[int, bytes] | None = None
    head: bool = False
    leave: bool = False


def chunked(rng: random.Random, body: bytes) -> bytes:
    """`body` in chunks of random sizes, some with an extension; sometimes a trailer."""
    out, at = bytearray(), 0
    while at < len(body):
        n = rng.randint(1, 300)
        ext = b";x=1" if rng.random() < 0.2 else b""
        out += b"%x%b\r\n%b\r\n" % (len(body[at : at + n]), ext, body[at : at + n])
        at += n
    return bytes(out) + (b"0\r\nX-Sum: 1\r\n\r\n" if rng.random() < 0.3 else b"0\r\n\r\n")


def pieces(rng: random.Random, data: bytes, most: int = 4) -> list[Step]:
    """`data` in up to `most` writes a few ms apart."""
    if len(data) < 2:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, most - 1))))
    out: list[Step] = []
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        out += [data[a:b], rng.choice([0.0, 0.002, 0.01])]
    return out


def valid_response(rng: random.Random) -> tuple[bytes, bytes, int, bytes, str]:
    """A well-formed response: (head, framed body, status, body, then)."""
    body = rng.randbytes(rng.choice([0, 1, 17, 300, 2000]))
    status, reason = rng.choice(
        [(200, b"OK"), (404, b"Not Found"), (500, b"Oops"), (201, b"Created")]
    )
    line = b"HTTP/1.1 %d %b\r\nContent-Type: application/octet-stream\r\n" % (status, reason)
    form = rng.choice(["length", "length", "chunked", "close", "interim"])
    if form == "chunked":
        return (
            line + b"Transfer-Encoding: chunked\r\n\r\n",
            chunked(rng, body),
            status,
            body,
            "keep",
        )
    if form == "close":
        return line + b"\r\n", body, status, body, "close"
    head = line + b"Content-Length: %d\r\n\r\n" % len(body)
    if form == "interim":
        head = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + head
    return head, body, status, body, "keep"


BAD_STATUS = [
    b"HTTP/1.1 2OO OK",
    b"HTTP/1.1 200",
    b"HTTP/1.1  200 OK",
    b"HTTP/9.9 200 OK",
    b"http/1.1 200 OK",
    b"HTTP/1.1 099 Low",
    b"HTTP/1.1 1000 Long",
    b"ICY 200 OK",
    b"",
    b"HTTP/1.1 200 O\x00K",
    b"HTTP/1.1 200 O\nK",
    b"\x00\x01\x02",
]

BAD_HEADERS = [
    b"X-Split: a\nX-Injected: yes",
    b"X-Nul: a\x00b",
    b"X-Cr: a\rb",
    b"X-Del: a\x7fb",
    b"X-Space : v",
    b"Bad Name: v",
    b"NoColon",
    b" X-Folded: v",
    b"Content-Length: 5\r\nContent-Length: 6",
    b"Content-Length: 12x",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999",
    b"Transfer-Encoding: chunked",  # with a Content-Length as well
]

BAD_CHUNKS = [b"zz", b"-1", b"fffffffffffffffffff", b"", b" 5", b"5\n", b"0x5", b"5;\x00"]


def dyno_plans() -> list[Plan]:
    """Every dyno plan, the same each run."""
    rng = random.Random(SEED + 1)
    plans: list[Plan] = []
    for n in range(150):
        head, framed, status, body, then = valid_response(rng)
        kind = rng.choice(
            ["clean", "clean", "slow", "status", "truncate-head", "truncate-body", "chunk",
             "extra", "extra-response", "header", "huge-head", "many-headers", "flip",
             "late-first-byte", "stall-body", "hangup", "switch", "many-interim"]
        )  # fmt: skip
        # HEAD only where the dyno answers it right: a body it sent anyway could come
        # after the router reused the connection, and spoil the next response.
        head_req = kind in ("clean", "slow", "many-interim") and rng.random() < 0.25
        whole = head if head_req else head + framed
        p = Plan(f"{n}-{kind}", [], "close", head=head_req)
        if kind == "clean":
            p.steps, p.then, p.expect = pieces(rng, whole), then, (status, body)
        elif kind == "slow":
            small = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"z" * 40 * (not head_req)
            p.steps = [x for byte in small for x in (bytes([byte]), 0.003)]
            p.then, p.expect = "keep", (200, b"z" * 40)
        elif kind == "status":
            p.steps = [rng.choice(BAD_STATUS) + b"\r\nContent-Length: 2\r\n\r\nok"]
        elif kind == "truncate-head":
            p.steps, p.then = [head[: rng.randrange(len(head))]], rng.choice(["close", "hold"])
        elif kind == "truncate-body" and framed:
            p.steps = [whole[: rng.randrange(len(head), len(whole))]]
            p.then = rng.choice(["close", "hold"])
        elif kind == "chunk":
            bad = rng.choice(BAD_CHUNKS)
            p.steps = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
                + bad
                + b"\r\nabcde\r\n0\r\n\r\n"
            ]
        elif kind == "extra":
            p.steps, p.then = [whole + rng.randbytes(rng.randint(1, 50))], "keep"
        elif kind == "extra-response":
            p.steps, p.then = [whole + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad"], "keep"
        elif kind == "header":
            at = head.index(b"\r\n") + 2
            p.steps = [head[:at] + rng.choice(BAD_HEADERS) + b"\r\n" + head[at:] + framed]
            p.then = "keep"
        elif kind == "huge-head":
            p.steps = [
                b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * 90000 + b"\r\nContent-Length: 0\r\n\r\n"
            ]
        elif kind == "many-headers":
            many = b"".join(b"X-H%d: %d\r\n" % (k, k) for k in range(rng.choice([127, 129, 300])))
            p.steps = [b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n"]
        elif kind == "flip":
            b = bytearray(whole)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            p.steps = [bytes(b)]
        elif kind == "late-first-byte":
            p.steps = [STALL, whole]  # after the first-byte timeout: H12
        elif kind == "stall-body" and len(framed) > 1:
            # Inside a body only: after a whole response the router may rightly send the
            # next request on the connection the dyno sleeps on (H12 for that one).
            p.steps = [head, framed[: len(framed) // 2], STALL, framed[len(framed) // 2 :]]
        elif kind == "switch":
            p.steps = [
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" + rng.randbytes(20)
            ]
        elif kind == "many-interim":
            p.steps = [b"HTTP/1.1 100 Continue\r\n\r\n" * rng.randint(2, 40) + whole]
            p.then, p.expect = then, (status, body)
        else:  # hangup, or no body to truncate or stall in: nothing at all
            p.steps = []
        if p.head and p.expect is not None:
            p.expect = (p.expect[0], b"")
        p.leave = rng.random() < 0.05
        plans.append(p)
    # And each known-bad piece once, whatever the draw above.
    ok = b"Content-Length: 2\r\n\r\nok"
    for i, status_line in enumerate(BAD_STATUS):
        plans.append(Plan(f"status-{i}", [status_line + b"\r\n" + ok], "close"))
    for i, header in enumerate(BAD_HEADERS):
        plans.append(Plan(f"header-{i}", [b"HTTP/1.1 200 OK\r\n" + header + b"\r\n" + ok], "keep"))
    for i, size in enumerate(BAD_CHUNKS):
        data = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + size
            + b"\r\nabcde\r\n0\r\n\r\n"
        )
        plans.append(Plan(f"chunk-{i}", [data], "keep"))
    return plans


PLANS = dyno_plans()


async def plan_dyno(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
    """Play the plan /b/<n> names; anything else is echoed."""
    if not seen.path.startswith("/b/"):
        return await echo(seen, r, w)
    plan = PLANS[int(seen.path[3:])]
    try:
        for step in plan.steps:
            if isinstance(step, bytes):
                w.write(step)
                await w.drain()
            elif step:
                await asyncio.sleep(step)
        if plan.then == "hold":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(r.read(), STALL)
    except ConnectionError:
        return False
    return plan.then == "keep"


class Conn:
    """A client connection sending /b/<n> requests one at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""
        self.used = False
        self.sent: Counter[int] = Counter()  # requests sent, per plan

    async def ask(self, n: int, plan: Plan) -> tuple[Reply | None, str]:
        """Send /b/n, read its response: (it or None if the connection closed first, what
        is wrong with it). A reused connection closed at once is tried again, fresh."""
        loop = asyncio.get_running_loop()
        for _ in range(2):
            if self.sock is None:
                self.sock, self.buf, self.used = await connect(self.port), b"", False
            method = "HEAD" if plan.head else "GET"
            with contextlib.suppress(OSError):
                await loop.sock_sendall(self.sock, req(f"/b/{n}", method=method))
                self.sent[n] += 1
            reused, self.used = self.used, True
            deadline = loop.time() + SETTLE
            eof = False
            while True:
                try:
                    parsed = parse_reply(self.buf, head_only=plan.head, eof=eof)
                except Malformed as exc:
                    self.drop()
                    return None, f"malformed response ({exc})"
                if parsed is not None:
                    break
                if plan.leave and self.buf:
                    self.drop(reset=True)
                    return None, ""
                try:
                    chunk = await asyncio.wait_for(
                        loop.sock_recv(self.sock, 65536), max(0.0, deadline - loop.time())
                    )
                except TimeoutError:
                    self.drop()
                    return None, f"neither answered nor closed within {SETTLE}s: {self.buf[:300]!r}"
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    eof = True
                    if not self.buf:
                        break
                self.buf += chunk
            if parsed is None:  # closed before a byte of a response
                self.drop()
                if reused:
                    continue
                return None, ""
            reply, used = parsed
            self.buf = self.buf[used:]
            if eof or reply.header(b"connection") == b"close" or not reply.complete:
                if self.buf:
                    return reply, f"{len(self.buf)} bytes after the response: {self.buf[:200]!r}"
                self.drop()
            elif self.buf:
                self.drop()
                return reply, f"bytes after the response: {self.buf[:200]!r}"
            return reply, ""
        return None, ""

    def drop(self, reset: bool = False) -> None:
        if self.sock is not None:
            if reset:
                rst(self.sock)
            else:
                self.sock.close()
        self.sock = None


def check(plan: Plan, reply: Reply | None) -> str:
    """What is wrong with a well-formed `reply` to `plan`, if anything."""
    if plan.expect is None or plan.leave:
        return ""
    if reply is None or not reply.complete:
        return "a valid response did not reach the client whole"
    status, body = plan.expect
    if (reply.status, reply.body) != (status, body):
        return f"expected {status} with {len(body)} bytes, got {reply.status}: {reply.body[:200]!r}"
    return ""


@run
async def test_malformed_dyno_responses_answered_or_closed() -> None:
    """A dyno answering with broken, truncated, padded, slow, late or no responses:
    clients get well-formed responses (the valid ones intact) or a closed connection,
    nothing of a broken response leaks into the next; then none is held, the log has
    each answered request, and a plain request still works."""
    d = await StressDyno(handler=plan_dyno).start()
    s = await stack(DYNOS, {HOST: route("app", d.backend)})
    conns = [Conn(s.port) for _ in range(10)]
    try:
        replies: list[Reply] = []
        failures: list[str] = []

        async def serve(k: int) -> None:
            conn = conns[k]
            for n in range(k, len(PLANS), len(conns)):
                plan = PLANS[n]
                reply, problem = await conn.ask(n, plan)
                problem = problem or check(plan, reply)
                if reply is not None:
                    replies.append(reply)
                if problem:
                    failures.append(f"/b/{n} ({plan.name}, then {plan.then}): {problem}\n"
                                    f"    dyno wrote {plan.steps!r:.400}")  # fmt: skip
            conn.drop()

        await asyncio.gather(*(serve(k) for k in range(len(conns))))
        assert not failures, f"{len(failures)} of {len(PLANS)} plans failed:\n" + "\n".join(
            failures[:40]
        )
        await settle(s)
        await logged(s, replies)
        sent = sum((conn.sent for conn in conns), Counter[int]())
        lines = Counter(int(m[1]) for line in s.lines if (m := PLAN_PATH.search(line)))
        wrong = {n: (lines[n], sent[n]) for n in range(len(PLANS)) if not 1 <= lines[n] <= sent[n]}
        assert not wrong, f"plans with other than one log line per request: {wrong}"
        await still_serves(s)
        await settle(s)
    finally:
        for conn in conns:
            conn.drop()
        await teardown(s, d)
