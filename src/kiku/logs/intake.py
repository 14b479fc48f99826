"""`RouterLogIntake`: router processes send their log lines here, as datagrams.

A router must never wait on logging, and it outlives the control plane: it sends each
batch of lines as one datagram to `<data_dir>/run/logplex.sock` and drops them when
nobody listens (as Heroku's router drops lines logplex cannot take). A datagram holds
lines `<app_id> <unix time> <router line>`; `-` as app id is a request for no app.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
from pathlib import Path

from kiku.logs.logplex import Logplex

log = logging.getLogger("kiku.logs")
RECEIVE_BUFFER = 8 << 20  # bytes: room for bursts while the loop is busy elsewhere
APP_ID = re.compile(r"[0-9a-f-]{36}")
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; root may pass rmem_max


class RouterLogIntake:
    """Reads datagrams on a thread of its own: the kernel queues only a few per socket
    (net.unix.max_dgram_qlen, 10 on Debian), so a busy event loop would make routers drop."""

    def __init__(self, logplex: Logplex, sock: socket.socket) -> None:
        self.logplex = logplex
        self.sock = sock
        self.malformed = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                data = self.sock.recv(1 << 17)
            except TimeoutError:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                raise
            try:
                self.received(data)
            except Exception:
                log.exception("a router log datagram could not be taken")
        self.sock.close()

    def stop(self) -> None:
        self._stopped.set()

    def received(self, data: bytes) -> None:
        batches: dict[str, list[tuple[float, str]]] = {}
        for row in data.decode(errors="replace").splitlines():
            app_id, _, rest = row.partition(" ")
            stamp, _, message = rest.partition(" ")
            if app_id == "-":
                continue  # a request for no app: nobody's stream
            try:
                at = float(stamp)
            except ValueError:
                self.malformed += 1
                continue
            if not APP_ID.fullmatch(app_id) or not message:
                self.malformed += 1
                continue
            batches.setdefault(app_id, []).append((at, message))
        for app_id, entries in batches.items():
            self.logplex.publish_stamped(app_id, "heroku", "router", entries)


def bind_intake(path: Path) -> socket.socket:
    """The intake's socket, replacing one a previous control plane left behind."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:  # not root: the kernel's rmem_max caps it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    return sock
