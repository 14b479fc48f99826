"""`HttpSender`: a drain's lines POSTed in batches to an `https://` or `http://` URL.

What logplex's HTTP drains send (HEROKU_BEHAVIOUR §4.4, logplex `README.http_drains.md`):

    POST /drain HTTP/1.1
    Content-Type: application/logplex-1
    Logplex-Msg-Count: 2
    Logplex-Frame-Id: 5D8C3B0E7A9F4C21B6E0D1F2A3B4C5D6     (the same on retries)
    Logplex-Drain-Token: d.fc6b856b-3332-4546-93de-7d0ee272c3bd
    User-Agent: Logplex/v0.1.0 (kiku)
    Authorization: Basic ...                               (from the URL's userinfo)

    83 <190>1 2026-01-01T00:00:00.000001+00:00 host app web.1 - Hello

Octet-counted RFC 5424 frames with HOSTNAME `host` and no structured-data field. Any 2xx
is delivered; a 4xx other than 429 drops the batch; anything else (5xx, 429, no
connection, a timeout) is tried twice more, then the batch is dropped.
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Literal

import httpx

from kiku.logs.drain_urls import DrainUrl
from kiku.logs.lines import LogLine
from kiku.logs.sender import DeliveryFailed, check_public

log = logging.getLogger("kiku.logs.drains")

ATTEMPTS = 3  # one try and two retries
TIMEOUT = httpx.Timeout(5.0, connect=3.0)


@functools.cache
def user_agent() -> str:
    """`Logplex/v<kiku version> (kiku)`: receivers look for the `Logplex/` prefix."""
    try:
        version = metadata.version("kiku")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return f"Logplex/v{version} (kiku)"


Outcome = Literal["delivered", "retry", "drop"]


class _NotFromDrains(logging.Filter):
    """httpx logs every request's URL at INFO: for drains, a line per batch, and the URL
    may carry a secret in its query. Drain threads (named `drain …`) log their own way."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith("drain ")


_QUIET = _NotFromDrains()


def _quiet_httpx() -> None:
    logger = logging.getLogger("httpx")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


class HttpSender:
    max_lines = 1024
    target_bytes = 100 * 1024

    def __init__(
        self,
        target: DrainUrl,
        token: str,
        *,
        tls: ssl.SSLContext | None = None,
        retry_delay: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        private_ok: bool = False,
        announce: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.target = target
        self.private_ok = private_ok
        self._announce = announce
        self.token = token
        self.retry_delay = retry_delay
        self.dropped = 0  # lines in batches given up on
        self._url = target.without_userinfo  # httpx logs URLs: no credentials in them
        self._aborted = threading.Event()
        _quiet_httpx()
        auth = None
        if target.username is not None or target.password is not None:
            auth = httpx.BasicAuth(target.username or "", target.password or "")
        self._client = httpx.Client(
            auth=auth,
            headers={
                "Content-Type": "application/logplex-1",
                "Logplex-Drain-Token": token,
                "User-Agent": user_agent(),
            },
            timeout=TIMEOUT,
            verify=tls if tls is not None else True,
            follow_redirects=False,
            trust_env=False,  # no proxies or CA files from kiku server's environment
            transport=transport,
        )

    def deliver(self, lines: Sequence[LogLine]) -> None:
        body = b"".join(line.syslog("host", sd=False) for line in lines)
        headers = {
            "Logplex-Msg-Count": str(len(lines)),
            "Logplex-Frame-Id": uuid.uuid4().hex.upper(),
        }
        why = ""
        for attempt in range(ATTEMPTS):
            if attempt and self._aborted.wait(self.retry_delay):
                break
            if not self.private_ok:
                try:
                    check_public(self.target.host, self.target.port)
                except DeliveryFailed as exc:
                    outcome, why = "retry", str(exc)
                    continue
            outcome, why = self._post(body, headers)
            if outcome == "delivered":
                return
            if outcome == "drop":
                break
        self.dropped += len(lines)
        log.warning(
            "drain %s (%s): dropped %d lines: %s",
            self.token,
            self.target.redacted(),
            len(lines),
            why,
        )

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[Outcome, str]:
        """What became of one attempt, and why it failed."""
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            if _bad_certificate(exc):
                self._announce(
                    'Error L14 (certificate validation): error="bad certificate" '
                    f'uri="{self.target.redacted()}"'
                )
            return "retry", f"{type(exc).__name__}: {exc}"
        status = response.status_code
        if 200 <= status < 300:
            return "delivered", ""
        if 400 <= status < 500 and status != 429:
            return "drop", f"the receiver answered {status}"
        return "retry", f"the receiver answered {status}"

    def abort(self) -> None:
        self._aborted.set()

    def close(self) -> None:
        self._client.close()


def _bad_certificate(exc: BaseException) -> bool:
    """Whether a failed request failed on the receiver's certificate (somewhere in the chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)
