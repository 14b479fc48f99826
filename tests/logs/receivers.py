"""Real drain receivers for tests: a syslog receiver (TCP or TLS) and an HTTPS one.

Both listen on 127.0.0.1, run in their own threads, and are context managers that stop
every thread and socket they started.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kiku.tls import LocalCA


def local_ca(directory: Path) -> LocalCA:
    """A CA (and a server certificate for 127.0.0.1 and localhost) in `directory`."""
    ca = LocalCA(directory)
    ca.ensure()
    return ca


def server_context(ca: LocalCA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.cert, ca.key)
    return context


def frames(data: bytes) -> tuple[list[bytes], bytes]:
    """Octet-counted frames (RFC 6587) in `data`, and the incomplete rest."""
    found: list[bytes] = []
    while True:
        length, space, rest = data.partition(b" ")
        if not space:
            return found, data
        assert length.isdigit(), f"not octet-counted framing: {data[:80]!r}"
        size = int(length)
        if len(rest) < size:
            return found, data
        found.append(rest[:size])
        data = rest[size:]


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.01)


@contextlib.contextmanager
def threads_stopped() -> Iterator[None]:
    """Fails unless every thread started inside the block has stopped soon after it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not left, f"threads left running: {[t.name for t in left]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SyslogReceiver:
    """Accepts connections and keeps every frame received, in order, across connections."""

    def __init__(self, tls: ssl.SSLContext | None = None, port: int = 0) -> None:
        self._tls = tls
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.messages: list[bytes] = []
        self.connections = 0
        self.handshake_failures = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def __enter__(self) -> SyslogReceiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def text(self) -> list[str]:
        """The messages received, each without the newline logplex ends a message with."""
        with self._lock:
            return [m.decode().removesuffix("\n") for m in self.messages]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        wait_until(lambda: len(self.messages) >= count, timeout, f"{count} syslog messages")
        return self.text()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        if self._tls is not None:
            try:
                conn = self._tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                with self._lock:
                    self.handshake_failures += 1
                conn.close()
                return
        conn.settimeout(0.05)
        with self._lock:
            self._conns.append(conn)
            self.connections += 1
        pending = b""
        with conn:
            while not self._stopping.is_set():
                try:
                    data = conn.recv(65536)
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
                except OSError:
                    return
                if not data:
                    return
                found, pending = frames(pending + data)
                with self._lock:
                    self.messages.extend(found)

    def hang_up(self) -> None:
        """Close every connection (the receiver restarts), but keep listening."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stopping.set()
        self.hang_up()
        self._listener.close()
        for thread in list(self._threads):
            thread.join(5)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def frames(self) -> list[str]:
        found, rest = frames(self.body)
        assert rest == b"", f"a partial frame at the end of a batch: {rest[:80]!r}"
        return [frame.decode().removesuffix("\n") for frame in found]


class HttpsReceiver:
    """An HTTP(S) server keeping every POST; answers the next of `statuses` (then 200).

    `hold()` makes requests wait until `release()`, to stall a drain deliberately."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Request] = []
        self.statuses: list[int] = []
        self.arrived = threading.Event()  # a request came in (set even while held)
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as drains use it
            timeout = 10

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._conns.append(self.connection)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.arrived.set()
                receiver._open.wait(20)
                status = receiver._record(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True  # server_close() joins the request threads
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.requests.append(Request(path, {k.lower(): v for k, v in headers.items()}, body))
            return self.statuses.pop(0) if self.statuses else 200

    def __enter__(self) -> HttpsReceiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Request]:
        wait_until(lambda: len(self.requests) >= count, timeout, f"{count} requests")
        with self._lock:
            return list(self.requests)

    def frames(self) -> list[str]:
        with self._lock:
            return [frame for request in self.requests for frame in request.frames]

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:  # end keep-alive connections, so their threads finish
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(5)
