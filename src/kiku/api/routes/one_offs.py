"""One-off dynos: `POST /apps/{app}/dynos` asks the dyno manager for one; an attached one
is reached over a WebSocket at `attach_url` (kiku's stand-in for Heroku's rendezvous).

Frames: binary frames carry stdin (client to dyno) and stdout (dyno to client); a text
frame `{"eof": true}` closes the dyno's stdin; `{"resize": {"rows": R, "cols": C}}` sets the
size of a dyno's terminal (its processes get SIGWINCH; ignored without a terminal, and by
servers that predate it); the last frame is `{"exit_code": N}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import random
import struct
import subprocess
import termios
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from kiku.api.deps import DB, AppDep, PlatformDep, read_credentials
from kiku.api.views import dyno_view
from kiku.dynos.backend import DynoHandle
from kiku.dynos.rendezvous import Secrets
from kiku.dynos.sizes import DEFAULT_SIZE, size_named
from kiku.dynos.states import DynoState
from kiku.errors import InvalidParams, KikuError, NotFound, Unauthorized
from kiku.platform import Platform
from kiku.store.models import Dyno

router = APIRouter()
# How long an attach waits for the dyno manager to start the dyno.
START_WAIT = 30.0


class OneOffCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    command: str = Field(min_length=1)
    attach: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    size: str | None = None
    type: str = "run"
    force_no_tty: bool | None = None


@router.post("/apps/{app_identity}/dynos", status_code=201)
def create_one_off(
    body: OneOffCreate, app: AppDep, platform: PlatformDep, db: DB
) -> dict[str, Any]:
    if body.type != "run":
        raise InvalidParams("Only one-off dynos of type run can be created here.")
    size = size_named(body.size or DEFAULT_SIZE).name.lower()
    taken = set(db.scalars(select(Dyno.name).where(Dyno.app_id == app.id)))
    name = next(
        n for n in (f"run.{random.randint(1000, 9999)}" for _ in range(100)) if n not in taken
    )
    now = platform.now()
    dyno = Dyno(
        app_id=app.id,
        name=name,
        type="run",
        command=body.command,
        size=size,
        state=DynoState.STARTING.value,
        one_off=True,
        attach=body.attach,
        # Heroku's clients send force_no_tty when their stdin is not a terminal.
        tty=body.attach and body.force_no_tty is False,
        env=dict(body.env),
        created_at=now,
        updated_at=now,
    )
    db.add(dyno)
    db.flush()
    view = dyno_view(dyno, app)
    if body.attach:
        # Heroku's clients attach by rendezvous (TLS, kiku's own CA in tls/ca.pem); the kiku
        # CLI uses the WebSocket at /apps/{app}/dynos/{name}/attach instead.
        secret = Secrets(platform.tls_dir / "rendezvous.key").make(dyno.id)
        host = urlsplit(platform.settings.api_url).hostname
        view["attach_url"] = f"rendezvous://{host}:{platform.settings.rendezvous_port}/{secret}"
    return view


def _backend(websocket: WebSocket) -> Any:
    """The local backend, for attaching (it reaches dynos through their state dir); made
    once per API app, not per connection (its constructor sets up host networking)."""
    from kiku.dynos.backends.local import LocalBackend

    state = websocket.app.state
    if getattr(state, "dyno_backend", None) is None:
        state.dyno_backend = LocalBackend.from_settings(state.platform.settings)
    return state.dyno_backend


@router.websocket("/apps/{app_identity}/dynos/{name}/attach")
async def attach(websocket: WebSocket, app_identity: str, name: str) -> None:
    platform: Platform = websocket.app.state.platform
    try:
        dyno_id, app_id = await asyncio.to_thread(
            _authorise, platform, websocket, app_identity, name
        )
    except KikuError as exc:
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    await websocket.accept()
    if not await _wait_started(platform, dyno_id):
        await websocket.send_text(json.dumps({"error": "the dyno did not start", "exit_code": 1}))
        await websocket.close()
        return
    backend = await asyncio.to_thread(_backend, websocket)
    handle = DynoHandle(dyno_id=dyno_id, name=name, app_id=app_id)
    attachment = await asyncio.to_thread(backend.attach, handle)
    if attachment is None:
        await websocket.send_text(json.dumps({"error": "could not attach", "exit_code": 1}))
        await websocket.close()
        return
    tty = attachment.stdout_fd if attachment.extra.get("tty") else None
    await _bridge(websocket, attachment.stdin_fd, attachment.stdout_fd, tty)
    code = await _exit_code(platform, dyno_id)
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(json.dumps({"exit_code": code}))
        await websocket.close()


@router.websocket("/apps/{app_identity}/dynos/{name}/exec")
async def exec_in_dyno(websocket: WebSocket, app_identity: str, name: str) -> None:
    """`ps:exec` / `ps:copy`: a command inside a running dyno, over the same frames."""
    platform: Platform = websocket.app.state.platform
    command = websocket.query_params.get("command") or "bash"
    try:
        dyno_id, app_id = await asyncio.to_thread(
            _authorise, platform, websocket, app_identity, name, one_off=False
        )
        backend = await asyncio.to_thread(_backend, websocket)
        handle = DynoHandle(dyno_id=dyno_id, name=name, app_id=app_id)
        argv, env = await asyncio.to_thread(backend.exec_command, handle, command)
    except KikuError as exc:
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    await websocket.accept()
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    process = subprocess.Popen(
        argv,
        stdin=stdin_read,
        stdout=stdout_write,
        stderr=stdout_write,
        env=env,
        start_new_session=True,
    )
    os.close(stdin_read)
    os.close(stdout_write)
    await _bridge(websocket, stdin_write, stdout_read)
    code = await asyncio.to_thread(process.wait)
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(json.dumps({"exit_code": code}))
        await websocket.close()


def _authorise(
    platform: Platform,
    websocket: WebSocket,
    app_identity: str,
    name: str,
    *,
    one_off: bool = True,
) -> tuple[str, str]:
    credentials = read_credentials(websocket)
    if credentials is None or not credentials.secret:
        raise Unauthorized("Send your API token to attach.")
    with platform.store.session() as db:
        user = platform.accounts.authenticate(db, credentials.secret).user
        app = platform.apps.find(db, app_identity, user)
        dyno = db.scalar(select(Dyno).where(Dyno.app_id == app.id, Dyno.name == name))
        if dyno is None or (one_off and not (dyno.one_off and dyno.attach)):
            raise NotFound(f"There is no dyno {name} to attach to.", resource="dyno")
        return dyno.id, app.id


async def _wait_started(platform: Platform, dyno_id: str) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_WAIT
    while loop.time() < deadline:
        with platform.store.session() as db:
            dyno = db.get(Dyno, dyno_id)
            if dyno is None or dyno.exit_code is not None:
                return False
            if dyno.state == DynoState.UP.value:
                return True
        await asyncio.sleep(0.05)
    return False


async def _bridge(
    websocket: WebSocket, stdin_fd: int, stdout_fd: int, tty: int | None = None
) -> None:
    """Frames to and from the dyno's stdio; `tty`: its pty master, for resize frames."""

    async def outbound() -> None:
        while chunk := await asyncio.to_thread(_read, stdout_fd):
            await websocket.send_bytes(chunk)

    async def inbound() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes"):
                    await asyncio.to_thread(os.write, stdin_fd, message["bytes"])
                    continue
                control = _control(message.get("text"))
                if control.get("eof"):
                    os.close(stdin_fd)
                    return
                if tty is not None and isinstance(control.get("resize"), dict):
                    _resize(tty, control["resize"])

    reading = asyncio.create_task(inbound())
    try:
        await outbound()
    finally:
        reading.cancel()
        with contextlib.suppress(OSError):
            os.close(stdout_fd)
        with contextlib.suppress(OSError):
            os.close(stdin_fd)


def _control(text: str | None) -> dict[str, Any]:
    """A text frame's JSON object; {} for anything else (unknown frames are ignored)."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _resize(master: int, size: dict[str, Any]) -> None:
    """TIOCSWINSZ on the pty master: the kernel signals SIGWINCH to the dyno's foreground
    process group."""
    try:
        rows, cols = int(size["rows"]), int(size["cols"])
    except (KeyError, TypeError, ValueError):
        return
    if 0 < rows < 65536 and 0 < cols < 65536:
        with contextlib.suppress(OSError):
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


async def _exit_code(platform: Platform, dyno_id: str) -> int:
    """The status the dyno manager recorded when it saw the dyno end."""
    for _ in range(400):
        with platform.store.session() as db:
            dyno = db.get(Dyno, dyno_id)
            if dyno is None:
                return 1
            if dyno.exit_code is not None:
                return dyno.exit_code
        await asyncio.sleep(0.05)
    return 1
