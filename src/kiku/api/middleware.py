"""ASGI wrappers for the Platform API conventions that hold for every response."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VERSION = re.compile(r"application/vnd\.heroku\+json;\s*version=([^\s;,]+)")


class RequestIdMiddleware:
    """Every response carries a `Request-Id` (HEROKU_BEHAVIOUR §10.2)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Request-Id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class RateLimitHeaderMiddleware:
    """Every response says how many requests the caller has left this hour."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_remaining(message: Message) -> None:
            if message["type"] == "http.response.start":
                remaining = state.get("ratelimit_remaining", self.limit)
                MutableHeaders(scope=message)["RateLimit-Remaining"] = str(remaining)
            await send(message)

        await self.app(scope, receive, send_with_remaining)


class AcceptVersionMiddleware:
    """Only API version 3 is spoken: `version=3` and its variants (`3.sdk`, `3.cedar-acm`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = _VERSION.search(Headers(scope=scope).get("accept", ""))
            if match and match.group(1).split(".")[0] != "3":
                body = {
                    "id": "not_acceptable",
                    "message": f"API version {match.group(1)} is not supported; "
                    "send Accept: application/vnd.heroku+json; version=3",
                }
                await _send_json(send, 406, body)
                return
        await self.app(scope, receive, send)


class ETagMiddleware:
    """ETags on successful GETs; a matching `If-None-Match` gets an empty 304."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        wanted = Headers(scope=scope).get("if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                # Only bodies of known length: a streamed one (a log tail) never ends.
                streamed = b"content-length" not in dict(message.get("headers", []))
                if message["status"] not in (200, 206) or streamed:
                    start = None
                    await send(message)
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            etag = '"' + hashlib.sha1(body, usedforsecurity=False).hexdigest() + '"'
            headers = MutableHeaders(scope=start)
            headers["ETag"] = etag
            if wanted and etag in [tag.strip() for tag in wanted.split(",")]:
                del headers["content-length"]
                start["status"] = 304
                body = b""
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffer)


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
