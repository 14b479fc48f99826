"""`POST /apps/{app}/log-sessions` (`kiku logs`, `heroku logs`) and the session URL it gives.

The URL needs no Authorization header (the official CLI sends none): the path is the
secret. It answers `text/event-stream` to EventSource clients (one event per batch of
lines, `id:` the last line's sequence number, so `Last-Event-ID` resumes without
repeating the backlog), and plain lines to anything else (heroku3, curl).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kiku.api.deps import AppDep, PlatformDep
from kiku.api.views import iso
from kiku.errors import InvalidParams, NotFound
from kiku.logs.lines import LogLine
from kiku.logs.logplex import Logplex
from kiku.logs.sessions import MAX_LINES, LogSessions, SessionSpec, TailSession

router = APIRouter()
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet tail (proxies drop idle streams)


class LogSessionCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lines: int | None = Field(default=None, ge=0)
    tail: bool = False
    source: str | None = None
    # `dyno_name` in today's schema; `dyno` and `ps` from older clients; `type` a process type.
    dyno_name: str | None = None
    dyno: str | None = None
    ps: str | None = None
    type: str | None = None


@router.post("/apps/{app_identity}/log-sessions", status_code=201)
async def create_log_session(
    body: LogSessionCreate, app: AppDep, platform: PlatformDep, request: Request
) -> dict[str, Any]:
    lines = 100 if body.lines is None else body.lines
    if lines > MAX_LINES:
        raise InvalidParams(f"lines can be at most {MAX_LINES} (the app's log history).")
    if body.source not in (None, "", "app", "heroku"):
        raise InvalidParams(f"Unknown source {body.source!r}: use app or heroku.")
    dyno = body.dyno_name or body.dyno or body.ps or body.type or None
    spec = SessionSpec(app.id, lines, body.tail, body.source or None, dyno)
    token = platform.log_sessions.create(spec)
    now = iso(platform.now())
    return {
        "id": token.rsplit(".", 1)[1],
        "logplex_url": f"{platform.settings.api_url}/log-sessions/{token}",
        "created_at": now,
        "updated_at": now,
    }


@router.get("/log-sessions/{token}")
async def stream_log_session(token: str, request: Request) -> StreamingResponse:
    platform = request.app.state.platform
    sessions: LogSessions = platform.log_sessions
    spec = sessions.open(token)
    if spec is None:
        raise NotFound(
            "This log session has expired or does not exist; start a new one with kiku logs.",
            resource="log-session",
        )
    sse = "text/event-stream" in request.headers.get("accept", "")
    after = _last_event_id(request.headers.get("last-event-id"))
    stream = _stream(platform.logplex, sessions, token, spec, sse, after)
    media = "text/event-stream" if sse else "text/plain; charset=utf-8"
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type=media, headers=headers)


async def _stream(
    logplex: Logplex,
    sessions: LogSessions,
    token: str,
    spec: SessionSpec,
    sse: bool,
    after: int | None,
) -> AsyncIterator[bytes]:
    tail = None
    if spec.tail:
        tail = TailSession(asyncio.get_running_loop(), spec.source, spec.dyno)
        backlog = logplex.attach(spec.app_id, tail, after=after if after is not None else 0)
        if after is None:
            backlog = [line for line in backlog if line.matches(spec.source, spec.dyno)]
            backlog = backlog[-spec.lines :] if spec.lines else []
        else:
            backlog = [line for line in backlog if line.matches(spec.source, spec.dyno)]
    elif after is not None:
        # A finished (non-tail) session the client reconnects to: nothing more to send.
        backlog = []
    else:
        backlog = logplex.history(spec.app_id, spec.lines, source=spec.source, dyno=spec.dyno)
    try:
        if backlog:
            yield _encode(backlog, None, sse)
        elif sse:
            yield b": kiku logplex\n\n"  # headers go out at once; EventSource opens
        if tail is None:
            return
        while True:
            lines, notice = await tail.next_batch(KEEPALIVE)
            sessions.touch(token)
            if lines or notice:
                yield _encode(lines, notice, sse)
            elif sse:
                yield b": keep-alive\n\n"
    finally:
        if tail is not None:
            logplex.detach(spec.app_id, tail)


def _encode(lines: list[LogLine], notice: str | None, sse: bool) -> bytes:
    rows = [line.render() for line in lines]
    if notice:
        rows.append(notice)
    if not sse:
        return ("\n".join(rows) + "\n").encode()
    event = "".join(f"data: {row}\n" for row in rows)
    ident = f"id: {lines[-1].seq}\n" if lines else ""
    return f"{ident}{event}\n".encode()


def _last_event_id(value: str | None) -> int | None:
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0, int(value))
    return None
