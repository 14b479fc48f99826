"""git's smart HTTP protocol at `/APP.git`, served by the real `git` (stateless RPC).

Auth is HTTP Basic with an API token as the password (any user name), as Heroku's git
endpoint; without credentials the answer is a 401 that makes git ask for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from kiku.api.deps import DB, CallerDep, PlatformDep
from kiku.errors import BadRequest
from kiku.platform import Platform
from kiku.store.models import App

router = APIRouter()
SERVICES = ("git-receive-pack", "git-upload-pack")


def _git_env(platform: Platform, app: App, user_id: str, request: Request) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "KIKU_APP_ID": app.id,
        "KIKU_USER_ID": user_id,
        "KIKU_BUILD_SOCKET": str(platform.build_socket),
    }
    protocol = request.headers.get("git-protocol")
    if protocol:
        env["GIT_PROTOCOL"] = protocol
    return env


def _find_app(platform: Platform, db: DB, caller: CallerDep, name: str) -> App:
    return platform.apps.find(db, name, caller.user)


@router.get("/{name}.git/info/refs")
async def info_refs(
    name: str, service: str, request: Request, caller: CallerDep, platform: PlatformDep, db: DB
) -> Response:
    if service not in SERVICES:
        raise BadRequest("Only smart HTTP is served: use git 1.6.6 or newer.")
    app = _find_app(platform, db, caller, name)
    repo = await asyncio.to_thread(platform.repos.ensure, app.id)
    process = await asyncio.create_subprocess_exec(
        "git",
        service.removeprefix("git-"),
        "--stateless-rpc",
        "--advertise-refs",
        str(repo),
        stdout=asyncio.subprocess.PIPE,
        env=_git_env(platform, app, caller.user.id, request),
    )
    advertisement, _ = await process.communicate()
    header = f"# service={service}\n"
    body = f"{len(header) + 4:04x}{header}0000".encode() + advertisement
    return Response(
        body,
        media_type=f"application/x-{service}-advertisement",
        headers={"Cache-Control": "no-cache"},
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body, gunzipped when git compressed it."""
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    async for chunk in request.stream():
        yield inflate.decompress(chunk) if inflate else chunk
    if inflate:
        yield inflate.flush()


async def _rpc(
    service: str, name: str, request: Request, caller: CallerDep, platform: Platform, db: DB
) -> StreamingResponse:
    app = _find_app(platform, db, caller, name)
    repo = await asyncio.to_thread(platform.repos.ensure, app.id)
    process = await asyncio.create_subprocess_exec(
        "git",
        service.removeprefix("git-"),
        "--stateless-rpc",
        str(repo),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=_git_env(platform, app, caller.user.id, request),
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    # The whole request goes in before the response starts: git reads all of it before it
    # answers, and once a StreamingResponse runs, Starlette reads the request channel
    # itself (to notice disconnects), so the body must be consumed here.
    try:
        async for chunk in _body(request):
            stdin.write(chunk)
            await stdin.drain()
    except zlib.error as exc:
        process.kill()
        await process.wait()
        raise BadRequest("The request body is not valid gzip.") from exc
    finally:
        with contextlib.suppress(ConnectionError):
            stdin.close()

    async def relay() -> AsyncIterator[bytes]:
        # Streamed as git writes it: the hook's build output reaches the pusher live.
        try:
            while chunk := await stdout.read(65536):
                yield chunk
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.wait()

    return StreamingResponse(
        relay(), media_type=f"application/x-{service}-result", headers={"Cache-Control": "no-cache"}
    )


@router.post("/{name}.git/git-receive-pack")
async def receive_pack(
    name: str, request: Request, caller: CallerDep, platform: PlatformDep, db: DB
) -> StreamingResponse:
    return await _rpc("git-receive-pack", name, request, caller, platform, db)


@router.post("/{name}.git/git-upload-pack")
async def upload_pack(
    name: str, request: Request, caller: CallerDep, platform: PlatformDep, db: DB
) -> StreamingResponse:
    return await _rpc("git-upload-pack", name, request, caller, platform, db)
