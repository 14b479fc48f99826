"""`SyslogSender`: a drain's lines to a `syslog://` (TCP) or `syslog+tls://` receiver.

RFC 5424 messages with octet-counting framing (RFC 6587), as logplex's `to_msg` writes
them: `LEN <PRI>1 TIMESTAMP TOKEN SOURCE PROCESS - - MESSAGE`, the drain token as HOSTNAME.
A receiver that goes away is reconnected to by the `Drain` (with backoff); a TLS receiver
whose certificate does not verify gets an `Error L14` line in the app's stream.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable, Sequence

from kiku.logs.drain_urls import DrainUrl
from kiku.logs.lines import LogLine
from kiku.logs.sender import DeliveryFailed, check_public

CONNECT_TIMEOUT = 3.0
# A receiver that reads nothing for this long is treated as gone (the buffer overflows
# meanwhile, with L10); shorter would cut off receivers that are merely slow.
SEND_TIMEOUT = 30.0


class SyslogSender:
    max_lines = 1024
    target_bytes = 256 * 1024

    def __init__(
        self,
        target: DrainUrl,
        token: str,
        *,
        tls: ssl.SSLContext | None = None,
        announce: Callable[[str], None] = lambda text: None,
        private_ok: bool = False,
    ) -> None:
        self.target = target
        self.private_ok = private_ok
        self.token = token
        self._tls = tls
        self._announce = announce
        self.dropped = 0  # never: undelivered lines wait in the buffer (and overflow, L10)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # guards _sock between deliver() and abort()

    def deliver(self, lines: Sequence[LogLine]) -> None:
        data = b"".join(line.syslog(self.token) for line in lines)
        sock = self._connected()
        try:
            sock.sendall(data)
        except OSError as exc:
            self._disconnect()
            raise DeliveryFailed(f"sending failed: {exc}") from exc

    def _connected(self) -> socket.socket:
        sock = self._sock
        if sock is not None and _peer_closed(sock):
            self._disconnect()  # a receiver never writes: readable means it hung up
            sock = None
        if sock is None:
            sock = self._connect()
            with self._lock:
                self._sock = sock
        return sock

    def _connect(self) -> socket.socket:
        address = (self.target.host, self.target.port)
        if not self.private_ok:
            try:
                check_public(*address)
            except DeliveryFailed as exc:
                self._announce(f'Error: drain uri="{self.target.redacted()}" refused: {exc}')
                raise
        try:
            raw = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise DeliveryFailed(f"cannot connect: {exc}") from exc
        if self._tls is None:
            raw.settimeout(SEND_TIMEOUT)
            return raw
        try:
            sock = self._tls.wrap_socket(raw, server_hostname=self.target.host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            self._announce(
                'Error L14 (certificate validation): error="bad certificate" '
                f'uri="{self.target.redacted()}"'
            )
            raise DeliveryFailed(f"bad certificate: {exc.verify_message}") from exc
        except OSError as exc:
            raw.close()
            raise DeliveryFailed(f"TLS handshake failed: {exc}") from exc
        sock.settimeout(SEND_TIMEOUT)
        return sock

    def _disconnect(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def abort(self) -> None:
        """Unblock a send in progress (another thread): the drain is closing."""
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._disconnect()


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the receiver hung up. Receivers send nothing, so a readable socket means
    end of file or a reset, or (TLS 1.3) a session ticket, which is read and ignored."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False
    sock.settimeout(0)
    try:
        while sock.recv(4096):
            pass
        return True
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    except OSError:
        return True
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(SEND_TIMEOUT)
