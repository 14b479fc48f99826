"""Heroku's `rendezvous://` attach for one-off dynos, so the official CLI's `run` works.

The protocol (HEROKU_CLI_WIRE §4b): a TLS connection; the client writes `SECRET` (the
official CLI adds `\\r\\n`, heroku3 does not); the server's first chunk is an ack the client
discards; then raw bytes both ways. Without a terminal the client sends `\\x04` for EOF.
When the dyno's output ends, the server closes the connection.

Secrets are `DYNO_ID.HMAC`: nothing to store, nothing to guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import socket
import ssl
from pathlib import Path

from kiku.dynos.backend import Backend, DynoHandle
from kiku.store import Store
from kiku.store.models import Dyno

log = logging.getLogger("kiku.rendezvous")
EOT = b"\x04"


class Secrets:
    def __init__(self, key_file: Path) -> None:
        if not key_file.exists():
            key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
        self._key = key_file.read_bytes()

    def make(self, dyno_id: str) -> str:
        mac = hmac.new(self._key, dyno_id.encode(), hashlib.sha256).hexdigest()
        return f"{dyno_id}.{mac}"

    def check(self, secret: str) -> str | None:
        dyno_id, _, _mac = secret.partition(".")
        return dyno_id if hmac.compare_digest(self.make(dyno_id), secret) else None


class RendezvousPart:
    """A server part: the TLS listener for attached one-off dynos."""

    name = "rendezvous"

    def __init__(
        self,
        store: Store,
        backend: Backend,
        secrets_: Secrets,
        tls: ssl.SSLContext,
        sock: socket.socket,
    ) -> None:
        self.store = store
        self.backend = backend
        self.secrets = secrets_
        self.tls = tls
        self.sock = sock
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        server = await asyncio.start_server(self._serve, sock=self.sock, ssl=self.tls)
        async with server:
            await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await asyncio.wait_for(reader.read(1024), timeout=10)
            secret = first.split(b"\n")[0].strip().decode(errors="replace").partition("?")[0]
            dyno_id = self.secrets.check(secret)
            handle = await self._handle(dyno_id) if dyno_id else None
            if handle is None:
                writer.write(b"rendezvous: unknown or finished dyno\r\n")
                return
            attachment = await asyncio.to_thread(self.backend.attach, handle)
            if attachment is None:
                writer.write(b"rendezvous: could not attach\r\n")
                return
            writer.write(b"rendezvous\r\n")
            await writer.drain()
            tty = bool(attachment.extra.get("tty"))
            await _bridge(reader, writer, attachment.stdin_fd, attachment.stdout_fd, tty)
        except (TimeoutError, ConnectionError, ssl.SSLError) as exc:
            log.info("rendezvous connection ended: %s", exc)
        finally:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.close()

    async def _handle(self, dyno_id: str) -> DynoHandle | None:
        """The dyno once the manager has started it (the client may come first)."""
        for _ in range(600):
            with self.store.session() as db:
                dyno = db.get(Dyno, dyno_id)
                if dyno is None or dyno.exit_code is not None or not dyno.attach:
                    return None
                if dyno.state == "up":
                    return DynoHandle(dyno_id=dyno.id, name=dyno.name, app_id=dyno.app_id)
            await asyncio.sleep(0.05)
        return None


async def _bridge(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    stdin_fd: int,
    stdout_fd: int,
    tty: bool,
) -> None:
    async def inbound() -> None:
        while chunk := await reader.read(65536):
            if not tty and EOT in chunk:
                head = chunk.split(EOT, 1)[0]
                if head:
                    await asyncio.to_thread(os.write, stdin_fd, head)
                os.close(stdin_fd)
                return
            await asyncio.to_thread(os.write, stdin_fd, chunk)

    reading = asyncio.create_task(inbound())
    try:
        while chunk := await asyncio.to_thread(_read, stdout_fd):
            writer.write(chunk)
            await writer.drain()
    finally:
        reading.cancel()
        for fd in (stdout_fd, stdin_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
